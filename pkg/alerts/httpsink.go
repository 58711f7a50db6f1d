package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Bounds on what is read of a response: enough of an error body to say
// what the receiver objected to, and enough of the rest to let the
// connection be reused without letting a misbehaving receiver make an
// attempt read forever.
const (
	maxErrorBody  = 200
	errorBodyRead = 4 << 10
	maxDrain      = 64 << 10
)

// httpPoster is what the webhook, Slack and PagerDuty sinks share: one
// POST of a JSON body, and the translation of what happened into the
// (retry, err) of the Sink contract with nothing secret in err.
type httpPoster struct {
	sink     string // the sink type, which names the sink in errors
	url      string
	redacted string
	client   *http.Client
	// secrets are cut out of every error text: the URL and its path and
	// query (a Slack URL is the credential), signing secrets and routing
	// keys, because a receiver's error body may echo them back.
	secrets []string
}

// newHTTPPoster posts to rawURL with a copy of client that does not
// follow redirects: a 301/302 turns a POST into a GET and so would drop
// the alert while reporting success, and a signed body or routing key
// belongs to the receiver it was configured for, not to wherever that
// receiver points.
func newHTTPPoster(sinkType, rawURL string, client *http.Client, secrets ...string) *httpPoster {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := &httpPoster{sink: sinkType, url: rawURL, redacted: config.Redact(rawURL), client: &c}
	p.secrets = append(p.secrets, rawURL)
	if u, err := url.Parse(rawURL); err == nil {
		p.secrets = append(p.secrets, u.String(), u.EscapedPath(), u.Path, u.RawQuery)
	}
	p.secrets = append(p.secrets, secrets...)
	return p
}

// post sends body with header under ctx, which carries the attempt's
// timeout. 2xx is delivered; a transport error, a timeout, 408, 429 and
// 5xx may succeed if repeated; anything else (3xx, other 4xx) means the
// request or the configuration is wrong and repeating it cannot help.
func (p *httpPoster) post(ctx context.Context, body []byte, header http.Header) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		// The parse error quotes the URL; the URL was checked when the
		// sink was built, so this is not expected, and says nothing more.
		return false, p.errorf(nil, "post %s to %s: invalid URL", p.sink, p.redacted)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	// The delivery's span (when tracing) travels as W3C traceparent, so
	// a receiver that traces continues the alert's trace.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "exfilguard")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error prints the full URL; keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, p.errorf(err, "post %s to %s: %v", p.sink, p.redacted, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Delivered: a failure to read the rest changes nothing but
		// whether the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return false, nil
	}
	// More is read than is shown so that a secret the receiver echoes
	// is cut out whole before the text is shortened, not left half in.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyRead))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	msg := fmt.Sprintf("post %s to %s: status %d", p.sink, p.redacted, resp.StatusCode)
	s := strings.TrimSpace(scrubSecrets(strings.ToValidUTF8(string(snippet), ""), p.secrets))
	if len(s) > maxErrorBody {
		s = strings.ToValidUTF8(s[:maxErrorBody], "") + "…"
	}
	if s != "" {
		msg += fmt.Sprintf(": %q", s)
	}
	return retryableStatus(resp.StatusCode), p.errorf(nil, "%s", msg)
}

// retryableStatus reports whether a response status may change on its
// own: the receiver is overloaded (429), gave up waiting for us (408) or
// failed (5xx). Any other non-2xx answer is about the request, which a
// repeat would send unchanged.
func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// errorf formats an error and cuts the poster's secrets out of its text;
// cause stays reachable through errors.Is/As (a context deadline, a
// *net.OpError) because callers and tests tell timeouts apart by it.
func (p *httpPoster) errorf(cause error, format string, args ...any) error {
	return &httpSinkError{msg: scrubSecrets(fmt.Sprintf(format, args...), p.secrets), cause: cause}
}

// httpSinkError is an error whose text has been checked for secrets. Its
// cause is never a *url.Error, whose text is the full URL.
type httpSinkError struct {
	msg   string
	cause error
}

func (e *httpSinkError) Error() string { return e.msg }
func (e *httpSinkError) Unwrap() error { return e.cause }

// scrubSecrets replaces each secret in s. Very short values are skipped:
// a path of "/" or a query of "a=1" is nothing to hide, and replacing
// every "/" would make the error unreadable.
func scrubSecrets(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}

// resolveSinkURL returns the receiver URL of cfg: url as written, or read
// from url_file or url_env when the URL itself is the credential (Slack).
// Only the redacted form ever appears in the error.
func resolveSinkURL(cfg config.Sink, getenv func(string) string) (string, error) {
	raw, from := cfg.URL, "url"
	if raw == "" {
		s, err := readSecret(cfg.URLFile, cfg.URLEnv, getenv)
		if err != nil {
			return "", fmt.Errorf("read %s url: %w", cfg.Type, err)
		}
		raw, from = strings.TrimSpace(s), "url_file"
		if cfg.URLFile == "" {
			from = "url_env " + cfg.URLEnv
		}
	}
	if raw == "" {
		return "", fmt.Errorf("%s sink: no url, url_file or url_env", cfg.Type)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s sink %s: not an http or https URL (%s)", cfg.Type, from, config.Redact(raw))
	}
	if u.User != nil {
		return "", fmt.Errorf("%s sink %s: URL must not carry credentials (%s)", cfg.Type, from, config.Redact(raw))
	}
	return raw, nil
}

// encodeBody encodes v without HTML escaping: receivers read these bodies
// (and Slack shows them) as they are, and "<" as \u003c only obscures.
func encodeBody(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// oneByOne sends alerts one request each, in order, for receivers that
// take one alert per request (Slack messages, PagerDuty events). When a
// request fails, the alerts before it were delivered but the outbox will
// hand the whole batch back; oneByOne remembers which went out so the
// retry posts only the rest, rather than repeating a Slack message or a
// PagerDuty trigger.
type oneByOne struct {
	mu sync.Mutex
	// sent holds the ids of the last call's alerts that were delivered,
	// kept only after a failure; it is rebuilt on every call, so it never
	// holds more than one batch.
	sent map[string]bool
}

func (o *oneByOne) notify(alerts []*Alert, send func(*Alert) (retry bool, err error)) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var done map[string]bool
	for _, a := range alerts {
		if !o.sent[a.ID] {
			if retry, err := send(a); err != nil {
				o.sent = done
				return retry, err
			}
		}
		if done == nil {
			done = make(map[string]bool, len(alerts))
		}
		done[a.ID] = true
	}
	o.sent = nil
	return false, nil
}

// truncateRunes cuts s to at most n characters, ending in "…" when it
// cut, because receivers reject fields over their limits rather than
// shortening them.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := 0
	for i := range s {
		if r == n-1 {
			return s[:i] + "…"
		}
		r++
	}
	return s
}
