package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestLoadFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string // substrings of the error, all of which must appear; empty for good files
	}{
		{file: "minimal.good.yml"},
		{file: "full.good.yml"},
		{file: "unknown_field.bad.yml", want: []string{"unknown_field.bad.yml:2: field horizon is not a known field of config.Engine"}},
		{file: "horizons_nest.bad.yml", want: []string{`horizons_nest.bad.yml:5: engine.horizons[2]: "50m" must be a whole multiple of the previous horizon "15m"`}},
		{file: "lateness.bad.yml", want: []string{`lateness.bad.yml:3: engine.allowed_lateness: "2m" exceeds the shortest horizon "1m"`}},
		{file: "duration_unit.bad.yml", want: []string{`duration_unit.bad.yml`, `unknown unit "y"`}},
		{file: "several.bad.yml", want: []string{
			"several.bad.yml:3: detectors.enumeration.min_share: must be in (0, 1], got 1.5",
			"several.bad.yml:5: detectors.fan_out.ratio: must be >= 1, got 0.5",
			"several.bad.yml:7: alerts.escalation_step: must be > 1, got 1",
		}},
		{file: "wrong_type.bad.yml", want: []string{"wrong_type.bad.yml:2: cannot unmarshal !!str `twenty-...` into int"}},
		{file: "kafka.good.yml"},
		{file: "kafka.bad.yml", want: []string{
			`kafka.bad.yml:2: kafka.brokers[0]: must be host:port, got "localhost"`,
			`kafka.bad.yml:5: kafka.topics[0].format: unknown format "csv"`,
			`kafka.bad.yml:6: kafka.sasl.password_file: exactly one of password_file and password_env must be set`,
			`kafka.bad.yml:9: kafka.start_offset: must be "earliest" or "latest", got "newest"`,
		}},
		{file: "sinks.good.yml"},
		{file: "sinks.bad.yml", want: []string{
			`sinks.bad.yml:4: alerts.sinks[0].type: unknown sink type "smoke-signal"`,
			`sinks.bad.yml:5: alerts.sinks[1].name: "a" is used by another sink`,
			`sinks.bad.yml:7: alerts.sinks[1].url: a Slack webhook URL is a secret: use url_file or url_env`,
			`sinks.bad.yml:8: alerts.sinks[2].secret_file: exactly one of secret_file and secret_env must be set`,
			`sinks.bad.yml:10: alerts.sinks[2].url: must not carry credentials, got "https://siem.example.com/<redacted>"`,
			`sinks.bad.yml:11: alerts.sinks[3].urls: must list at least one Alertmanager`,
			`sinks.bad.yml:13: alerts.sinks[3].format: alertmanager sinks have their own format`,
			`sinks.bad.yml:14: alerts.sinks[3].rules[0]: unknown rule "distinct_records"`,
		}},
		{file: "tuning.good.yml"},
		{file: "tuning.bad.yml", want: []string{
			"tuning.bad.yml:18: field max_rowz is not a known field of config.BulkRead",
			"tuning.bad.yml:5: sensitive.classes[0].weight: must be in (0, 100], got 0",
			"tuning.bad.yml:10: overrides[0].match.roles: only principals have a role",
			`tuning.bad.yml:11: overrides[0].horizons[0]: "2h" is not one of engine.horizons`,
			"tuning.bad.yml:14: overrides[0].detectors.volume_spike.ratio: must be >= 1, got 0.5",
			`tuning.bad.yml:15: overrides[1].name: override "etl" defined twice`,
			"tuning.bad.yml:20: allowlist[0].owner: is required",
			`tuning.bad.yml:21: allowlist[0].hours: "25:00-04:00" is not HH:MM-HH:MM`,
			`tuning.bad.yml:22: allowlist[0].timezone: unknown time zone "Mars/Olympus"`,
			`tuning.bad.yml:23: allowlist[0].expires: "2027-02-30" is not a date (YYYY-MM-DD)`,
			`tuning.bad.yml:27: maintenance[0].end: "2026-12-05T22:00:00Z" is not after start "2026-12-06T04:00:00Z"`,
			`tuning.bad.yml:28: maintenance[0].rules[0]: unknown rule "bulk_reads"`,
		}},
		{file: "scaleout.good.yml"},
		{file: "scaleout.bad.yml", want: []string{
			"scaleout.bad.yml:2: engine.shards: must be 1 with scale_out: tasks, one per partition, replace kind shards; got 2",
			"scaleout.bad.yml:4: kafka.topics: scale_out needs exactly one input topic (tasks are its partitions), got 2",
			`scaleout.bad.yml:8: scale_out.repartition[0]: "source_net" is the input_key: its entities are whole in their partition already`,
			`scaleout.bad.yml:8: scale_out.repartition[1]: entity kind "client" is not enabled in engine.entities`,
			`scaleout.bad.yml:8: scale_out.repartition[2]: must be one of [principal source_net credential source_ip client], got "hosts"`,
			"scaleout.bad.yml:9: scale_out.replication_factor: must be -1 (the broker's default) or between 1 and 32767, got 0",
		}},
		{file: "no_entities.bad.yml", want: []string{"no_entities.bad.yml:2: engine.entities: at least one entity kind must be enabled"}},
		{file: "entity_ttl.bad.yml", want: []string{
			`entity_ttl.bad.yml:2: engine.entity_ttl: "5d" must exceed the longest horizon "1w"`,
			`entity_ttl.bad.yml:2: engine.entity_ttl: "5d" must exceed detectors.dormant_credential.dormant_for "3w"`,
			"entity_ttl.bad.yml:3: engine.max_entities: must not be negative (0 means no cap), got -1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), "testdata/"+w) && !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestEveryTestdataFileIsInTheTable(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yml")
	for _, f := range files {
		b := filepath.Base(f)
		if !strings.HasSuffix(b, ".good.yml") && !strings.HasSuffix(b, ".bad.yml") {
			t.Errorf("%s: name must end in .good.yml or .bad.yml", f)
		}
	}
}

func TestDefaultsAreValidAndRoundTrip(t *testing.T) {
	d := Default()
	if errs := d.Validate(); len(errs) > 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	out, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("defaults.yml", out)
	if err != nil {
		t.Fatalf("re-parse defaults: %v\n%s", err, out)
	}
	again, _ := yaml.Marshal(got)
	if string(again) != string(out) {
		t.Errorf("defaults do not round-trip:\n%s\n---\n%s", out, again)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "1m", want: time.Minute},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0", want: 0},
		{in: "", wantErr: true},
		{in: "-1m", wantErr: true},
		{in: "1.5h", wantErr: true},
		{in: "10", wantErr: true},
		{in: "99999999999999w", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got.D() != tt.want {
				t.Errorf("got %v, want %v", got.D(), tt.want)
			}
			if err == nil && tt.want != 0 {
				back, err := ParseDuration(got.String())
				if err != nil || back != got {
					t.Errorf("String %q does not round-trip", got.String())
				}
			}
		})
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.yml")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Engine.Horizons) != 5 {
		t.Errorf("horizons = %v", c.Engine.Horizons)
	}
}

// TestSinkErrorsHideSecrets: a config error about a URL never repeats the
// secret in it (a Slack URL's path, credentials in a URL).
func TestSinkErrorsHideSecrets(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "sinks.bad.yml"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, secret := range []string{"SECRET", "pw@", "user:"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error repeats %q:\n%v", secret, err)
		}
	}
}

// TestOverrideChangesOnlyWhatItSays: an override's detectors section is
// decoded over the top-level one, so unwritten knobs keep their values.
func TestOverrideChangesOnlyWhatItSays(t *testing.T) {
	c, err := Load("testdata/tuning.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	o := c.Overrides[0].Detectors
	if o.VolumeSpike.Ratio != 20 || o.VolumeSpike.K != c.Detectors.VolumeSpike.K || !o.VolumeSpike.Enabled {
		t.Errorf("volume_spike = %+v, want ratio 20 and the rest from %+v", o.VolumeSpike, c.Detectors.VolumeSpike)
	}
	if o.BulkRead.Enabled || o.BulkRead.MaxRows != c.Detectors.BulkRead.MaxRows {
		t.Errorf("bulk_read = %+v", o.BulkRead)
	}
	if o.Enumeration != c.Detectors.Enumeration {
		t.Errorf("enumeration changed: %+v", o.Enumeration)
	}
}

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"svc-etl-*", "svc-etl-7", true}, {"svc-etl-*", "svc-etl-", true}, {"svc-etl-*", "svc-et", false},
		{"*", "", true}, {"", "", true}, {"", "a", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"/v1/customers/*", "/v1/customers/42/orders", true}, {"*.customers", "public.customers", true},
		{"*a*b*", "xxaxxbxx", true}, {"*a*b", "xxaxxbxxc", false}, {"a**", "a", true},
	} {
		if got := Glob(tt.p, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestExpired(t *testing.T) {
	c, err := Load("testdata/tuning.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Expires 2027-03-31 in Europe/Berlin: in force until 2027-03-31T22:00Z.
	if n := len(c.Expired(time.Date(2027, 3, 31, 21, 59, 0, 0, time.UTC))); n != 0 {
		t.Errorf("expired before the end of its last day: %d", n)
	}
	if n := len(c.Expired(time.Date(2027, 3, 31, 22, 0, 0, 0, time.UTC))); n != 1 {
		t.Errorf("not expired after its last day: %d", n)
	}
}
