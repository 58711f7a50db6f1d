package alerts

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Slack posts alerts to a Slack incoming webhook, one message per alert,
// laid out (Block Kit) to be read in the channel at a glance: what, how
// bad, whom, how much, and where to go next.
//
// Several alerts in one Notify are posted one by one, in order. If one
// fails, Notify stops and reports it; the ones before it were delivered
// and are remembered, so the outbox's retry of the same alerts posts only
// those not yet sent.
type Slack struct {
	post *httpPoster
	once oneByOne
}

// Slack's limits (Block Kit reference): longer text is rejected with
// invalid_blocks, so every piece is cut to fit.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
	slackTextMax    = 3000 // fallback text; Slack allows more, phones show less
)

// NewSlack builds the Slack sink of cfg. The webhook URL is the
// credential, so it comes from url_file or url_env and errors show only
// its host.
func NewSlack(cfg config.Sink, d Deps) (*Slack, error) {
	d.defaults()
	u, err := resolveSinkURL(cfg, d.Getenv)
	if err != nil {
		return nil, err
	}
	return &Slack{post: newHTTPPoster(config.SinkSlack, u, d.HTTP)}, nil
}

// Notify posts one message per alert.
func (s *Slack) Notify(ctx context.Context, alerts ...*Alert) (bool, error) {
	return s.once.notify(alerts, func(a *Alert) (bool, error) {
		body, err := encodeBody(slackMessage(a))
		if err != nil {
			return false, fmt.Errorf("post slack: encode message: %w", err)
		}
		return s.post.post(ctx, body, nil)
	})
}

type slackMsg struct {
	Text        string       `json:"text"`
	Blocks      []slackBlock `json:"blocks"`
	UnfurlLinks bool         `json:"unfurl_links"`
	UnfurlMedia bool         `json:"unfurl_media"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

func slackMrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s} }

// slackMessage lays out a. Everything that comes from the observed
// traffic (entity keys, principals, summaries quoting them) is escaped:
// an attacker who can choose a client name must not be able to put
// <!channel> or a link of their own into the SOC's channel.
func slackMessage(a *Alert) slackMsg {
	sev := strings.ToUpper(a.Severity)
	title := fmt.Sprintf("%s %s %s %s", slackEmoji(a), sev, a.Rule, slackStatus(a))
	if a.Entity.Key != "" {
		title += " · " + a.Entity.Key
	}

	summary := a.Summary
	if summary == "" {
		summary = fmt.Sprintf("%s on %s %s", a.Rule, a.Entity.Kind, a.Entity.Key)
	}

	exposure := num(a.Incident.Exposure.Rows) + " rows"
	if a.Incident.Exposure.Records > 0 {
		exposure += " · " + num(a.Incident.Exposure.Records) + " records"
	}
	fields := []slackText{
		slackField("Entity", slackEscape(a.Entity.Kind+" "+a.Entity.Key)),
		slackField("Principal", slackEscape(slackOrDash(a.Principal))),
		slackField("Severity", slackEscape(a.Severity)),
		slackField("Score", slackScore(a.Score)),
		slackField("Exposure (incident)", exposure),
		slackField("Window", slackEscape(fmt.Sprintf("%s – %s (%s)", a.Window.Start, a.Window.End, a.Window.Horizon))),
	}
	if len(a.MitreAttack) > 0 {
		ids := make([]string, len(a.MitreAttack))
		for i, t := range a.MitreAttack {
			ids[i] = slackMitreLink(t.Technique)
		}
		fields = append(fields, slackField("MITRE ATT&CK", strings.Join(ids, ", ")))
	}
	if m := slackMeasures(a); m != "" {
		fields = append(fields, slackField("Observed / expected", m))
	}
	fields = fields[:min(len(fields), slackFieldsMax)]

	ctx := []string{"Incident `" + slackEscape(a.Incident.ID) + "`"}
	if a.Incident.Sequence > 0 {
		ctx = append(ctx, "update "+strconv.Itoa(a.Incident.Sequence))
	}
	ctx = append(ctx, "Alert `"+slackEscape(a.ID)+"`")
	if a.Runbook != "" {
		ctx = append(ctx, "<"+slackURL(a.Runbook)+"|Runbook>")
	}

	return slackMsg{
		Text: truncateRunes(slackEscape(fmt.Sprintf("%s %s %s %s on %s %s: %s (incident %s)",
			slackEmoji(a), sev, a.Rule, slackStatus(a), a.Entity.Kind, a.Entity.Key, summary, a.Incident.ID)), slackTextMax),
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{Type: "plain_text", Text: truncateRunes(title, slackHeaderMax), Emoji: true}},
			{Type: "section", Text: slackPtr(slackMrkdwn(truncateRunes(slackEscape(summary), slackSectionMax)))},
			{Type: "section", Fields: fields},
			{Type: "context", Elements: []slackText{slackMrkdwn(truncateRunes(strings.Join(ctx, " · "), slackSectionMax))}},
		},
	}
}

func slackPtr[T any](v T) *T { return &v }

// slackEmoji colours the header by severity so the channel can be scanned;
// a resolution is green whatever it resolved, so it never reads as a new
// alarm.
func slackEmoji(a *Alert) string {
	if a.Incident.Status == StatusResolved {
		return "✅"
	}
	switch a.Severity {
	case "critical":
		return "🔴"
	case "high":
		return "🟠"
	case "medium":
		return "🟡"
	default:
		return "🔵"
	}
}

func slackStatus(a *Alert) string {
	if a.Incident.Status == "" {
		return StatusOpened
	}
	return a.Incident.Status
}

func slackField(label, value string) slackText {
	return slackMrkdwn(truncateRunes("*"+slackEscape(label)+"*\n"+value, slackFieldMax))
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// to (links, mentions, entities); the rest of mrkdwn only styles text.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackURL makes a URL safe inside <url|label>, where "|" ends the URL
// and ">" the link.
func slackURL(u string) string {
	return strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C").Replace(u)
}

// slackMitreLink links a technique id ("T1213.006") to its ATT&CK page, where
// a sub-technique is a path segment.
func slackMitreLink(id string) string {
	if id == "" || strings.ContainsAny(id, "<>|&/ ") {
		return slackEscape(id)
	}
	return "<https://attack.mitre.org/techniques/" + strings.ReplaceAll(id, ".", "/") + "/|" + id + ">"
}

// slackMeasures shows the measures behind the alert, at most three,
// in name order so that messages are stable.
func slackMeasures(a *Alert) string {
	names := make([]string, 0, len(a.Observed))
	for n := range a.Observed {
		names = append(names, n)
	}
	slices.Sort(names)
	var lines []string
	for _, n := range names[:min(len(names), 3)] {
		line := slackEscape(n) + ": " + num(a.Observed[n])
		if e, ok := a.Expected[n]; ok {
			line += " vs " + num(e)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func slackScore(x float64) string {
	return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64)
}

func slackOrDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
