package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Webhook posts alerts to an HTTP endpoint, signed per Standard Webhooks
// (https://www.standardwebhooks.com/) so that a receiver can use any of
// that project's libraries to check the body came from us, unaltered and
// recently, and can dedupe retries on webhook-id.
type Webhook struct {
	post   *httpPoster
	format string
	// batch is set when batch_size > 1: every request is then a JSON
	// array, even of one alert, so a receiver parses one shape.
	batch bool
	key   []byte
	now   func() time.Time
	once  oneByOne
}

// minWebhookKey is the shortest signing key accepted. The spec asks for
// 24 to 64 bytes; anything under 16 is more likely a mistyped secret (a
// password that happens to be valid base64) than a key.
const minWebhookKey = 16

// NewWebhook builds the webhook sink of cfg; the signing secret is read
// now, so a missing or malformed one stops startup rather than every
// delivery.
func NewWebhook(cfg config.Sink, d Deps) (*Webhook, error) {
	d.defaults()
	u, err := resolveSinkURL(cfg, d.Getenv)
	if err != nil {
		return nil, err
	}
	secret, err := readSecret(cfg.SecretFile, cfg.SecretEnv, d.Getenv)
	if err != nil {
		return nil, fmt.Errorf("webhook signing secret: %w", err)
	}
	if secret == "" {
		return nil, errors.New("webhook signing secret: set secret_file or secret_env: webhooks are signed")
	}
	key, err := webhookKey(secret)
	if err != nil {
		return nil, err
	}
	format := cfg.Format
	if format == "" {
		format = config.FormatNative
	}
	return &Webhook{
		post:   newHTTPPoster(config.SinkWebhook, u, d.HTTP, secret, strings.TrimPrefix(secret, "whsec_")),
		format: format,
		batch:  cfg.BatchSize > 1,
		key:    key,
		now:    d.Now,
	}, nil
}

// webhookKey decodes a Standard Webhooks secret: "whsec_" then the key in
// base64. The prefix is optional because some providers hand out the
// base64 part alone; unpadded base64 is accepted for the same reason.
func webhookKey(secret string) ([]byte, error) {
	b64 := strings.TrimPrefix(strings.TrimSpace(secret), "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil {
		return nil, errors.New(`webhook signing secret: not "whsec_" followed by base64`)
	}
	if len(key) < minWebhookKey {
		return nil, fmt.Errorf("webhook signing secret: key is %d bytes, want at least %d (24 to 64 per the spec)", len(key), minWebhookKey)
	}
	return key, nil
}

// Notify posts alerts: with batch_size 1 one request per alert (normally
// there is just one), otherwise all of them as one JSON array.
func (w *Webhook) Notify(ctx context.Context, alerts ...*Alert) (bool, error) {
	if len(alerts) == 0 {
		return false, nil
	}
	if !w.batch {
		return w.once.notify(alerts, func(a *Alert) (bool, error) {
			body, err := Render(w.format, a)
			if err != nil {
				return false, fmt.Errorf("post webhook: %w", err)
			}
			return w.send(ctx, a.ID, body)
		})
	}
	body := []byte{'['}
	for i, a := range alerts {
		b, err := Render(w.format, a)
		if err != nil {
			return false, fmt.Errorf("post webhook: %w", err)
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	return w.send(ctx, webhookBatchID(alerts), body)
}

// send signs and posts one delivery. The timestamp, and so the signature,
// is fresh on every attempt, as the spec asks: a receiver rejects
// timestamps more than a few minutes old, and a retry may come later.
func (w *Webhook) send(ctx context.Context, id string, body []byte) (bool, error) {
	ts := strconv.FormatInt(w.now().Unix(), 10)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", signWebhook(w.key, id, ts, body))
	return w.post.post(ctx, body, h)
}

// signWebhook is the v1 signature of the spec: HMAC-SHA256 over
// "id.timestamp.body", base64 with padding.
func signWebhook(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// webhookBatchID is the webhook-id of a batch: a hash of its alert ids in
// order, so a retry of the same batch carries the same id and a receiver
// can drop it as a duplicate. A batch of one is named by its alert, like
// an unbatched delivery. (The outbox may retry with more alerts appended,
// which is a new id: receivers that must never see an alert twice dedupe
// on the alert ids in the body.)
func webhookBatchID(alerts []*Alert) string {
	if len(alerts) == 1 {
		return alerts[0].ID
	}
	h := sha256.New()
	for _, a := range alerts {
		h.Write([]byte(a.ID))
		h.Write([]byte{'\n'})
	}
	return "batch_" + hex.EncodeToString(h.Sum(nil)[:12])
}
