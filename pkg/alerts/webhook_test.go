package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// whTestSecret is a Standard Webhooks secret as receivers hand them out:
// "whsec_" and 32 random bytes in base64.
var whTestSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("XXXXSECRET-signing-key-0123456789"))

var whClock = time.Date(2026, 2, 4, 12, 0, 5, 0, time.UTC)

// whVerify checks a delivery the way a receiver following
// https://www.standardwebhooks.com/ does. It is written from the spec,
// not from the signer, so that the two cannot share a mistake: all three
// headers present; a timestamp within 5 minutes of the receiver's clock;
// the key is the base64 after "whsec_"; the signature is
// HMAC-SHA256(key, id "." timestamp "." body) in base64; the header may
// list several space-separated "v1,<sig>" entries, any one matching is
// enough, compared in constant time.
func whVerify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	const tolerance = 5 * time.Minute
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %s is %v from now", ts, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("bad secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Split(sigs, " ") {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

func whSink(t *testing.T, url string, mod func(*config.Sink, *Deps)) *Webhook {
	t.Helper()
	cfg := config.Sink{Name: "soc", Type: config.SinkWebhook, URL: url, SecretEnv: "WH_SECRET", Format: config.FormatNative, BatchSize: 1}
	d := Deps{Now: func() time.Time { return whClock }, Getenv: func(k string) string {
		if k == "WH_SECRET" {
			return whTestSecret
		}
		return ""
	}}
	if mod != nil {
		mod(&cfg, &d)
	}
	w, err := NewWebhook(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// The published test vector of the Standard Webhooks reference libraries:
// both the signer and the test's verifier must agree with it, or a
// receiver's library would reject what we send.
func TestWebhookSignatureMatchesSpecVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = "1614265330"
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	key, err := webhookKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := signWebhook(key, id, ts, []byte(body)); got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,bm90IGl0 v2,"+want[3:]+" "+want)
	if err := whVerify(secret, h, []byte(body), time.Unix(1614265330, 0)); err != nil {
		t.Errorf("verifier rejects the spec vector among other signatures: %v", err)
	}
}

func TestWebhookSignedDelivery(t *testing.T) {
	rcv := hsServe(t, 200)
	a := hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)
	if _, err := whSink(t, rcv.URL, nil).Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	r := got[0]
	if err := whVerify(whTestSecret, r.header, r.body, whClock); err != nil {
		t.Fatalf("delivery does not verify: %v", err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if r.header.Get("webhook-id") != a.ID || r.header.Get("webhook-timestamp") != strconv.FormatInt(whClock.Unix(), 10) {
		t.Errorf("webhook-id %q timestamp %q", r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"))
	}
	want, _ := Render(config.FormatNative, a)
	if string(r.body) != string(want) {
		t.Errorf("body\n%s\nwant the rendered alert\n%s", r.body, want)
	}

	tampered := []byte(strings.Replace(string(r.body), `"severity":"high"`, `"severity":"low"`, 1))
	if string(tampered) == string(r.body) {
		t.Fatal("tampering changed nothing")
	}
	if err := whVerify(whTestSecret, r.header, tampered, whClock); err == nil {
		t.Error("tampered body verifies")
	}
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-key-of-thirty-two-bytes!"))
	if err := whVerify(other, r.header, r.body, whClock); err == nil {
		t.Error("another secret verifies")
	}
	for _, skew := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
		if err := whVerify(whTestSecret, r.header, r.body, whClock.Add(skew)); err == nil {
			t.Errorf("verifies with the receiver's clock %v off", skew)
		}
	}
	for _, skew := range []time.Duration{-4 * time.Minute, 4 * time.Minute} {
		if err := whVerify(whTestSecret, r.header, r.body, whClock.Add(skew)); err != nil {
			t.Errorf("rejected with the receiver's clock %v off: %v", skew, err)
		}
	}
}

// A secret handed out without the whsec_ prefix is the same key.
func TestWebhookSecretWithoutPrefix(t *testing.T) {
	rcv := hsServe(t, 200)
	w := whSink(t, rcv.URL, func(_ *config.Sink, d *Deps) {
		d.Getenv = func(string) string { return strings.TrimPrefix(whTestSecret, "whsec_") }
	})
	if _, err := w.Notify(context.Background(), hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)); err != nil {
		t.Fatal(err)
	}
	r := rcv.requests()[0]
	if err := whVerify(whTestSecret, r.header, r.body, whClock); err != nil {
		t.Errorf("delivery does not verify: %v", err)
	}
}

func TestWebhookBadSecret(t *testing.T) {
	for name, secret := range map[string]string{
		"not base64": "whsec_XXXXSECRET!!not*base64",
		"too short":  "whsec_" + base64.StdEncoding.EncodeToString([]byte("XXXXSECRET")),
		"empty":      "",
	} {
		_, err := NewWebhook(
			config.Sink{Type: config.SinkWebhook, URL: "https://receiver.example" + hsSecretPath, SecretEnv: "S", BatchSize: 1},
			Deps{Getenv: func(string) string { return secret }})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		hsNoSecrets(t, err, secret)
	}
}

// A batch is one JSON array whose webhook-id stays the same when the
// same batch is retried, while timestamp and signature are fresh.
func TestWebhookBatchRetryKeepsID(t *testing.T) {
	rcv := hsServe(t, 503, 200)
	now := whClock
	w := whSink(t, rcv.URL, func(c *config.Sink, d *Deps) {
		c.BatchSize = 50
		d.Now = func() time.Time { return now }
	})
	batch := []*Alert{
		hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0),
		hsAlert("8b2d7e4f1a6c3095d7e8f1a2", StatusEscalated, 1),
	}
	if retry, err := w.Notify(context.Background(), batch...); err == nil || !retry {
		t.Fatalf("503: retry %v err %v", retry, err)
	}
	now = now.Add(30 * time.Second)
	if _, err := w.Notify(context.Background(), batch...); err != nil {
		t.Fatal(err)
	}
	got := rcv.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	id := got[0].header.Get("webhook-id")
	if id == "" || got[1].header.Get("webhook-id") != id {
		t.Errorf("webhook-id %q then %q: a retry must keep it", id, got[1].header.Get("webhook-id"))
	}
	if id == batch[0].ID || id == batch[1].ID {
		t.Errorf("batch webhook-id %q is one alert's id", id)
	}
	if got[0].header.Get("webhook-timestamp") == got[1].header.Get("webhook-timestamp") {
		t.Error("retry reuses the old timestamp")
	}
	if err := whVerify(whTestSecret, got[1].header, got[1].body, now); err != nil {
		t.Errorf("retry does not verify: %v", err)
	}
	var alerts []Alert
	if err := json.Unmarshal(got[1].body, &alerts); err != nil {
		t.Fatalf("batch body is not a JSON array of alerts: %v", err)
	}
	if len(alerts) != 2 || alerts[0].ID != batch[0].ID || alerts[1].ID != batch[1].ID {
		t.Errorf("batch body holds %+v", alerts)
	}

	// A different batch is a different delivery.
	if _, err := w.Notify(context.Background(), batch[1], batch[0]); err != nil {
		t.Fatal(err)
	}
	if again := rcv.requests()[2].header.Get("webhook-id"); again == id {
		t.Error("a batch in another order has the same webhook-id")
	}

	// With batch_size > 1 even one alert is an array: one shape per sink.
	if _, err := w.Notify(context.Background(), batch[0]); err != nil {
		t.Fatal(err)
	}
	last := rcv.requests()[3]
	if !strings.HasPrefix(string(last.body), "[") || last.header.Get("webhook-id") != batch[0].ID {
		t.Errorf("batch of one: id %q body %.40s", last.header.Get("webhook-id"), last.body)
	}
}

func TestWebhookOCSFFormat(t *testing.T) {
	rcv := hsServe(t, 200)
	w := whSink(t, rcv.URL, func(c *config.Sink, _ *Deps) { c.Format = config.FormatOCSF })
	a := hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)
	if _, err := w.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	want, _ := Render(config.FormatOCSF, a)
	if got := rcv.requests()[0].body; string(got) != string(want) {
		t.Errorf("body %s, want the OCSF rendering %s", got, want)
	}
}

func TestWebhookDelivery(t *testing.T) {
	hsDeliveryCases(t, func(t *testing.T, url string) Sink { return whSink(t, url, nil) }, 204,
		func(t *testing.T, r hsRequest, a *Alert) {
			if err := whVerify(whTestSecret, r.header, r.body, whClock); err != nil {
				t.Errorf("delivery does not verify: %v", err)
			}
			var got Alert
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if r.header.Get("webhook-id") != a.ID || got.ID != a.ID {
				t.Errorf("webhook-id %q, body id %q; want %q", r.header.Get("webhook-id"), got.ID, a.ID)
			}
		}, whTestSecret, strings.TrimPrefix(whTestSecret, "whsec_"))
}
