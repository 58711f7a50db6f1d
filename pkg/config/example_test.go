package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const examplePath = "../../docs/config.example.yml"

// TestExampleIsTheDefaults keeps docs/config.example.yml honest: it parses
// strictly and says exactly what the built-in defaults are.
func TestExampleIsTheDefaults(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		want, _ := yaml.Marshal(Default())
		got, _ := yaml.Marshal(c)
		t.Errorf("example differs from the defaults:\n--- example\n%s\n--- defaults\n%s", got, want)
	}
}

// TestExampleDocumentsEveryKey: every key of the schema appears in the
// example, so a new knob cannot ship undocumented.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			if !strings.Contains(text, key+":") {
				t.Errorf("%s%s is not in %s", prefix, key, examplePath)
			}
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+key+".", f.Type)
			}
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				walk(prefix+key+"[].", f.Type.Elem())
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
}

// TestReferenceDocumentsEveryKey: docs/configuration.md names every key
// of the schema, so the reference cannot fall behind the code.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			if !strings.Contains(text, "`"+key+"`") {
				t.Errorf("%s%s is not in docs/configuration.md", prefix, key)
			}
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(prefix+key+".", f.Type)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(prefix+key+"[].", f.Type.Elem())
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
}
