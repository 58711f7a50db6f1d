package replay

import (
	"context"
	"os"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
)

func replayFile(t *testing.T, path, format, prefix string) *Summary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := config.Default()
	cfg.Input.Format, cfg.Input.LogLinePrefix = format, prefix
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("%s: %v", format, errs[0])
	}
	sum, err := Run(context.Background(), Options{Config: cfg, Input: f, Alerts: nopWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestPostgresLogsReplayAlike: one real PostgreSQL 15 + pgaudit run wrote
// the same records to jsonlog, csvlog and stderr (testdata/pgaudit/real);
// replayed as files, each frames its records its own way (one JSON object
// per line, CSV records whose quoted statements span lines, stderr records
// with tab-indented statement lines and CONTEXT lines of their own), and
// all three give the same accesses, the same ignored lines, and the same
// one untrusted impostor (a RAISE LOG 'AUDIT: ...').
func TestPostgresLogsReplayAlike(t *testing.T) {
	const dir = "../event/testdata/pgaudit/real/"
	const prefix = "%m [%p] %q%u@%d "
	for _, format := range []string{"", "auto"} {
		json := replayFile(t, dir+"real.json", or(format, "pgaudit_jsonlog"), "")
		csv := replayFile(t, dir+"real.csv", or(format, "pgaudit_csvlog"), "")
		stderr := replayFile(t, dir+"real.log", or(format, "pgaudit_stderr"), prefix)
		for name, s := range map[string]*Summary{"jsonlog": json, "csvlog": csv, "stderr": stderr} {
			t.Logf("%s %s: %d records, %d events, ignored %v, failures %v", format, name, s.Lines, s.Events, s.Ignored, s.DecodeErrors)
			if s.Events != json.Events || s.Lines != json.Lines || s.DecodeErrors["untrusted"] != 1 || len(s.DecodeErrors) != 1 {
				t.Errorf("%s %s: %d records, %d events, failures %v; want %d, %d and exactly one untrusted", format, name, s.Lines, s.Events, s.DecodeErrors, json.Lines, json.Events)
			}
		}
		if json.Events < 20 {
			t.Errorf("only %d accesses in the real logs", json.Events)
		}
	}
}

// TestMySQLArrayFileReplays: MySQL writes its audit file as one JSON array
// across many lines; replay reads it record by record.
func TestMySQLArrayFileReplays(t *testing.T) {
	for _, format := range []string{"mysql_audit", "auto"} {
		s := replayFile(t, "../event/testdata/mysql_audit/enterprise.log", format, "")
		if s.Events == 0 || len(s.DecodeErrors) != 0 {
			t.Errorf("%s: %d events, failures %v", format, s.Events, s.DecodeErrors)
		}
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
