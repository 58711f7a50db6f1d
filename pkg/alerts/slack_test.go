package alerts

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

func slackSink(t *testing.T, url string) *Slack {
	t.Helper()
	s, err := NewSlack(config.Sink{Name: "soc-channel", Type: config.SinkSlack, URLEnv: "SLACK_WEBHOOK_URL", BatchSize: 1},
		Deps{Getenv: func(k string) string {
			if k == "SLACK_WEBHOOK_URL" {
				return url
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slackValidate checks a message against the Block Kit limits Slack
// enforces (it answers invalid_blocks otherwise), read from the JSON as
// Slack reads it rather than from our types.
func slackValidate(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("message is not JSON: %v", err)
	}
	text, _ := msg["text"].(string)
	if text == "" {
		t.Error("no top-level text fallback")
	}
	blocks, _ := msg["blocks"].([]any)
	if len(blocks) == 0 || len(blocks) > 50 {
		t.Fatalf("%d blocks", len(blocks))
	}
	textObj := func(where string, v any, wantType string, max int) string {
		o, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: not a text object: %v", where, v)
			return ""
		}
		typ, _ := o["type"].(string)
		s, _ := o["text"].(string)
		if typ != wantType {
			t.Errorf("%s: type %q, want %q", where, typ, wantType)
		}
		if s == "" {
			t.Errorf("%s: empty text", where)
		}
		if n := utf8.RuneCountInString(s); n > max {
			t.Errorf("%s: %d characters, limit %d", where, n, max)
		}
		return s
	}
	seen := map[string]int{}
	for i, b := range blocks {
		blk, _ := b.(map[string]any)
		typ, _ := blk["type"].(string)
		seen[typ]++
		switch typ {
		case "header":
			textObj("header", blk["text"], "plain_text", 150)
		case "section":
			if blk["text"] == nil && blk["fields"] == nil {
				t.Errorf("block %d: section with neither text nor fields", i)
			}
			if blk["text"] != nil {
				textObj("section text", blk["text"], "mrkdwn", 3000)
			}
			if blk["fields"] != nil {
				fields, _ := blk["fields"].([]any)
				if len(fields) == 0 || len(fields) > 10 {
					t.Errorf("block %d: %d fields, want 1 to 10", i, len(fields))
				}
				for _, f := range fields {
					textObj("field", f, "mrkdwn", 2000)
				}
			}
		case "context":
			els, _ := blk["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				t.Errorf("block %d: %d context elements", i, len(els))
			}
			for _, e := range els {
				textObj("context", e, "mrkdwn", 3000)
			}
		default:
			t.Errorf("block %d: unexpected type %q", i, typ)
		}
	}
	if seen["header"] != 1 || seen["section"] < 1 || seen["context"] != 1 {
		t.Errorf("blocks %v: want a header, sections and a context line", seen)
	}
	return msg
}

func slackTexts(msg map[string]any) string {
	b, _ := json.Marshal(msg)
	var all []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			all = append(all, v)
		}
	}
	var m any
	_ = json.Unmarshal(b, &m)
	walk(m)
	return strings.Join(all, "\n")
}

func TestSlackMessageIsReadable(t *testing.T) {
	rcv := hsServe(t, 200)
	s := slackSink(t, rcv.URL+hsSecretPath)
	a := hsAlert("3f9a1c2b7d4e5f60718293a4", StatusEscalated, 2)
	if _, err := s.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	msg := slackValidate(t, rcv.requests()[0].body)
	header := msg["blocks"].([]any)[0].(map[string]any)["text"].(map[string]any)["text"].(string)
	for _, want := range []string{"🟠", "HIGH", "distinct_records", "escalated", "svc-reporting"} {
		if !strings.Contains(header, want) {
			t.Errorf("header %q lacks %q", header, want)
		}
	}
	all := slackTexts(msg)
	for _, want := range []string{
		a.Summary, "principal svc-reporting", "61,044 rows", "48,210 records", "91.4",
		"T1213.006", "T1030", "attack.mitre.org/techniques/T1213/006/", "1h",
		a.Incident.ID, a.ID, "<" + a.Runbook + "|Runbook>", "distinct_records: 48,210 vs 313",
		"MITRE ATT&amp;CK",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("message lacks %q:\n%s", want, all)
		}
	}
	if text := msg["text"].(string); !strings.Contains(text, a.Incident.ID) || !strings.Contains(text, "distinct_records") {
		t.Errorf("fallback text %q", text)
	}
}

func TestSlackStatusesAndSeverities(t *testing.T) {
	rcv := hsServe(t, 200)
	s := slackSink(t, rcv.URL+hsSecretPath)
	for _, c := range []struct {
		status, severity, emoji string
	}{
		{StatusOpened, "critical", "🔴"},
		{StatusOpened, "medium", "🟡"},
		{StatusOpened, "low", "🔵"},
		{StatusResolved, "critical", "✅"},
	} {
		a := hsAlert("3f9a1c2b7d4e5f60718293a4", c.status, 0)
		a.Severity = c.severity
		if _, err := s.Notify(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		got := rcv.requests()
		msg := slackValidate(t, got[len(got)-1].body)
		header := msg["blocks"].([]any)[0].(map[string]any)["text"].(map[string]any)["text"].(string)
		if !strings.HasPrefix(header, c.emoji) || !strings.Contains(header, c.status) {
			t.Errorf("%s %s: header %q, want %s and the status", c.severity, c.status, header, c.emoji)
		}
	}
}

// Text from the observed traffic can be long and can be chosen by an
// attacker; the message must still be valid and must not mention anyone
// or link anywhere on their behalf.
func TestSlackHostileAndHugeInput(t *testing.T) {
	rcv := hsServe(t, 200)
	s := slackSink(t, rcv.URL+hsSecretPath)
	a := hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)
	a.Entity.Key = "<!channel> <https://evil.example|click> " + strings.Repeat("ключ", 600)
	a.Principal = "<@U024BE7LH>" + strings.Repeat("p", 3000)
	a.Summary = strings.Repeat("read & read <again> ", 400)
	for i := range 30 {
		a.MitreAttack = append(a.MitreAttack, models.Technique{Technique: "T1" + strings.Repeat("0", i%4) + "9"})
	}
	for i := range 20 {
		a.Observed[strings.Repeat("m", 1000)+string(rune('a'+i))] = float64(i)
	}
	if _, err := s.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	msg := slackValidate(t, rcv.requests()[0].body)
	// The header is plain_text, which Slack never parses for mentions or
	// links (slackValidate checked its type); everything else is mrkdwn.
	msg["blocks"] = msg["blocks"].([]any)[1:]
	all := slackTexts(msg)
	for _, bad := range []string{"<!channel>", "<@U024BE7LH>", "<https://evil.example"} {
		if strings.Contains(all, bad) {
			t.Errorf("message carries %q unescaped", bad)
		}
	}
}

// A failure midway: the alerts before it were posted; the outbox's retry
// of the same alerts posts only the rest, in order.
func TestSlackPartialFailureResendsOnlyUnsent(t *testing.T) {
	rcv := hsServe(t, 200, 500, 200)
	s := slackSink(t, rcv.URL+hsSecretPath)
	alerts := []*Alert{
		hsAlert("a00000000000000000000001", StatusOpened, 0),
		hsAlert("a00000000000000000000002", StatusEscalated, 1),
		hsAlert("a00000000000000000000003", StatusEscalated, 2),
	}
	for i, a := range alerts {
		a.Incident.ID = "1nc1dent000000000000000" + string(rune('1'+i))
	}
	retry, err := s.Notify(context.Background(), alerts...)
	if err == nil || !retry {
		t.Fatalf("second message answered 500: retry %v err %v", retry, err)
	}
	if n := len(rcv.requests()); n != 2 {
		t.Fatalf("%d requests after the failure, want 2 (stop at the first failure)", n)
	}
	if _, err := s.Notify(context.Background(), alerts...); err != nil {
		t.Fatal(err)
	}
	got := rcv.requests()
	want := []string{alerts[0].Incident.ID, alerts[1].Incident.ID, alerts[1].Incident.ID, alerts[2].Incident.ID}
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i, r := range got {
		var m struct{ Text string }
		_ = json.Unmarshal(r.body, &m)
		if !strings.Contains(m.Text, want[i]) {
			t.Errorf("request %d: text %q, want incident %s", i, m.Text, want[i])
		}
	}
}

func TestSlackURLFromFile(t *testing.T) {
	rcv := hsServe(t, 200)
	file := filepath.Join(t.TempDir(), "slack-url")
	if err := os.WriteFile(file, []byte(rcv.URL+hsSecretPath+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewSlack(config.Sink{Type: config.SinkSlack, URLFile: file}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Notify(context.Background(), hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)); err != nil {
		t.Fatal(err)
	}
	if got := rcv.requests(); len(got) != 1 || got[0].path != hsSecretPath {
		t.Errorf("requests %+v", got)
	}
	_, err = NewSlack(config.Sink{Type: config.SinkSlack, URLEnv: "UNSET_SLACK_URL"}, Deps{Getenv: func(string) string { return "" }})
	if err == nil {
		t.Error("unset url_env accepted")
	}
}

func TestSlackDelivery(t *testing.T) {
	hsDeliveryCases(t, func(t *testing.T, url string) Sink { return slackSink(t, url) }, 200,
		func(t *testing.T, r hsRequest, a *Alert) {
			msg := slackValidate(t, r.body)
			if text, _ := msg["text"].(string); !strings.Contains(text, a.Incident.ID) {
				t.Errorf("text %q lacks incident %s", text, a.Incident.ID)
			}
		})
}
