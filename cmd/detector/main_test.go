package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/alerts"
)

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(good, []byte(`{"ts":"2026-01-05T10:00:00Z","principal":"alice","object":"public.customers","rows":3}
garbage
{"ts":"2026-01-05T10:00:05Z","principal":"alice","object":"public.customers","rows":2}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(badCfg, []byte("engine:\n  horizons: [1m, 50s]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantCode: exitUsage, wantStderr: "usage: detector COMMAND"},
		{name: "help", args: []string{"--help"}, wantCode: exitOK, wantStderr: "replay"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: exitUsage, wantStderr: `unknown command "frobnicate"`},
		{name: "replay without input", args: []string{"replay"}, wantCode: exitUsage, wantStderr: "--input"},
		{name: "replay missing file", args: []string{"replay", "--input", filepath.Join(dir, "nope")}, wantCode: exitFailed, wantStderr: "open input"},
		{name: "replay bad config", args: []string{"replay", "--config", badCfg, "--input", good}, wantCode: exitUsage, wantStderr: "bad.yml:2: engine.horizons[1]"},
		{name: "replay unknown format", args: []string{"replay", "--format", "csv", "--input", good}, wantCode: exitUsage, wantStderr: `unknown format "csv"`},
		{name: "replay counts bad lines and succeeds", args: []string{"replay", "--input", good}, wantCode: exitOK, wantStderr: "replay: 3 lines, 2 events, 1 skipped (malformed_json=1)"},
		{name: "config check bad", args: []string{"config", "check", badCfg}, wantCode: exitUsage, wantStderr: "must be a whole multiple"},
		{name: "config check good", args: []string{"config", "check", "../../pkg/config/testdata/full.good.yml"}, wantCode: exitOK, wantStdout: "ok"},
		{name: "config defaults", args: []string{"config", "defaults"}, wantCode: exitOK, wantStdout: "horizons:"},
		{name: "gen", args: []string{"gen", "--days", "1", "--scale", "0.01"}, wantCode: exitOK, wantStdout: `"principal":`, wantStderr: "gen: "},
		{name: "gen with labels", args: []string{"gen", "--days", "3", "--scale", "0.01", "--scenarios", "all", "--out", filepath.Join(dir, "g.jsonl"), "--labels", filepath.Join(dir, "l.json")}, wantCode: exitOK, wantStderr: "scenario labels"},
		{name: "pseudonym of a record", args: []string{"pseudonym", "--pseudonym-key-file", keyFile, "--record", "cust-0000000042"}, wantCode: exitOK,
			wantStdout: alerts.NewPseudonymizer([]byte("k")).RecordID("cust-0000000042") + "\n"},
		{name: "pseudonym of a customer", args: []string{"pseudonym", "--pseudonym-key-file", keyFile, "--customer", "cust-42"}, wantCode: exitOK, wantStdout: "customer:"},
		{name: "pseudonym without key", args: []string{"pseudonym", "--record", "x"}, wantCode: exitUsage, wantStderr: "no pseudonym key"},
		{name: "gen unknown scenario", args: []string{"gen", "--scenarios", "nope"}, wantCode: exitUsage, wantStderr: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// TestDefaultsPassCheck: what `config defaults` prints is a valid config.
func TestDefaultsPassCheck(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"config", "defaults"}, &out, &errb); code != exitOK {
		t.Fatal(errb.String())
	}
	p := filepath.Join(t.TempDir(), "defaults.yml")
	if err := os.WriteFile(p, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"config", "check", p}, &out, &errb); code != exitOK {
		t.Fatalf("defaults fail check: %s", errb.String())
	}
}
