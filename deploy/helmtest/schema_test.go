package helmtest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// TestSchemaRejectsTypos renders each testdata/bad-*.yaml, which misspells
// or misplaces a key: helm must refuse it through values.schema.json, and
// the message must name the key (each file's "# want:" lines).
func TestSchemaRejectsTypos(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad-*.yaml (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(b), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, strings.TrimSpace(w))
				}
			}
			if len(wants) == 0 {
				t.Fatalf("%s has no \"# want:\" line", f)
			}
			_, stderr, err := helmTemplate(t, []string{f})
			if err == nil {
				t.Fatalf("helm template -f %s succeeded; the schema must reject it", f)
			}
			if !strings.Contains(stderr, "values don't meet the specifications of the schema") {
				t.Errorf("helm template -f %s failed, but not on the schema:\n%s", f, stderr)
			}
			for _, w := range wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("helm template -f %s:\n%s\nwant the message to contain %q", f, stderr, w)
				}
			}
		})
	}
}

// TestValuesDocumented: every key of values.yaml has a helm-docs "# --"
// comment, itself or through an enclosing block that has one; and every
// key the schema declares under an undocumented block is in values.yaml,
// so that the file shows every setting.
func TestValuesDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schema := readSchema(t)
	var check func(n *yamlv3.Node, schema map[string]any, path string)
	check = func(n *yamlv3.Node, schema map[string]any, path string) {
		props, _ := schema["properties"].(map[string]any)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			seen[k.Value] = true
			sub, ok := props[k.Value].(map[string]any)
			if !ok {
				t.Errorf("values.yaml: %s is not in values.schema.json", p)
				continue
			}
			documented := strings.Contains("\n"+k.HeadComment, "\n# --")
			if documented {
				continue // the comment covers the whole block
			}
			if v.Kind != yamlv3.MappingNode || len(v.Content) == 0 {
				t.Errorf("values.yaml: %s (line %d) has no \"# --\" comment", p, k.Line)
				continue
			}
			check(v, sub, p)
		}
		for name := range props {
			if !seen[name] {
				t.Errorf("values.schema.json declares %s, which values.yaml does not show", strings.TrimPrefix(path+"."+name, "."))
			}
		}
	}
	check(doc.Content[0], schema, "")
}

// TestConfigSchemaMatchesDetector keeps the schema of `config` equal to
// the detector's own config: the same keys at every level as `detector
// config defaults` prints (less those the chart sets), and the detector's
// defaults, written out in full, pass both the schema and the detector.
func TestConfigSchemaMatchesDetector(t *testing.T) {
	out, err := exec.Command(detectorPath(t), "config", "defaults").Output()
	if err != nil {
		t.Fatalf("detector config defaults: %v", err)
	}
	var defaults map[string]any
	if err := yaml.Unmarshal(out, &defaults); err != nil {
		t.Fatal(err)
	}
	// Set by the chart from other values; the schema rejects them under config.
	for _, p := range [][]string{{"kafka", "brokers"}, {"kafka", "topics"}, {"kafka", "tls"}, {"kafka", "sasl"}, {"state", "dir"}, {"http", "listen"}, {"alerts", "sinks"}} {
		m, ok := defaults[p[0]].(map[string]any)
		if !ok {
			t.Fatalf("detector config defaults has no %s", p[0])
		}
		if _, ok := m[p[1]]; !ok {
			t.Errorf("detector config defaults has no %s.%s: the chart sets a key that no longer exists", p[0], p[1])
		}
		delete(m, p[1])
	}
	cfgSchema, _ := readSchema(t)["properties"].(map[string]any)["config"].(map[string]any)
	var compare func(v any, s map[string]any, path string)
	compare = func(v any, s map[string]any, path string) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		props, _ := s["properties"].(map[string]any)
		if s["additionalProperties"] != false {
			t.Errorf("schema of config%s: want additionalProperties: false", path)
		}
		var have, want []string
		for k := range props {
			have = append(have, k)
		}
		for k := range m {
			want = append(want, k)
		}
		sort.Strings(have)
		sort.Strings(want)
		if !reflect.DeepEqual(have, want) {
			t.Errorf("schema of config%s has keys\n  %v\nthe detector has\n  %v", path, have, want)
		}
		for k, sub := range m {
			if ps, ok := props[k].(map[string]any); ok {
				compare(sub, ps, path+"."+k)
			}
		}
	}
	compare(defaults, cfgSchema, "")

	values, err := yaml.Marshal(map[string]any{"config": defaults})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "defaults-values.yaml")
	if err := os.WriteFile(f, values, 0o600); err != nil {
		t.Fatal(err)
	}
	r := render(t, []string{f})
	checkConfig(t, one(t, "ConfigMap", r.configMaps).Data["config.yml"])
}

func readSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	if s["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("values.schema.json: $schema %v, want draft-07", s["$schema"])
	}
	return s
}
