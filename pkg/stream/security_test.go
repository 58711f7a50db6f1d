package stream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
)

// TestKafkaSecurity consumes through each supported SASL mechanism and
// through mutual TLS, with the password read from a file or the
// environment as an operator would mount it.
func TestKafkaSecurity(t *testing.T) {
	pki := newPKI(t)
	lines := sampleLines(t)[:3000]
	for _, tc := range []struct {
		name      string
		mechanism string
		tls       bool
		fromEnv   bool
	}{
		{name: "plain", mechanism: "PLAIN"},
		{name: "scram-sha-256", mechanism: "SCRAM-SHA-256", fromEnv: true},
		{name: "scram-sha-512+mtls", mechanism: "SCRAM-SHA-512", tls: true},
		{name: "mtls", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const user, pass = "exfilguard", "s3cret-p4ss"
			var kopts []kfake.Opt
			var copts []kgo.Opt
			if tc.mechanism != "" {
				kopts = append(kopts, kfake.EnableSASL(), kfake.Superuser(tc.mechanism, user, pass))
				switch tc.mechanism {
				case "PLAIN":
					copts = append(copts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
				case "SCRAM-SHA-256":
					copts = append(copts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
				case "SCRAM-SHA-512":
					copts = append(copts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
				}
			}
			if tc.tls {
				kopts = append(kopts, kfake.TLS(pki.server))
				copts = append(copts, kgo.DialTLSConfig(pki.client))
			}
			c := kafkatest.Cluster(t, 1, []string{"audit"}, kopts...)
			kafkatest.Produce(t, c.ListenAddrs(), "audit", lines, copts...)

			cfg := testConfig(c.ListenAddrs(), "audit", t.TempDir())
			if tc.mechanism != "" {
				cfg.Kafka.SASL = config.KafkaSASL{Mechanism: tc.mechanism, Username: user}
				if tc.fromEnv {
					t.Setenv("EXFILGUARD_TEST_KAFKA_PASSWORD", pass)
					cfg.Kafka.SASL.PasswordEnv = "EXFILGUARD_TEST_KAFKA_PASSWORD"
				} else {
					f := filepath.Join(t.TempDir(), "password")
					if err := os.WriteFile(f, []byte(pass+"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
					cfg.Kafka.SASL.PasswordFile = f
				}
			}
			if tc.tls {
				cfg.Kafka.TLS = config.KafkaTLS{Enabled: true, CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile}
			}
			if errs := cfg.Validate(); len(errs) > 0 {
				t.Fatal(errs[0])
			}
			// The cluster really checks: the same settings with a wrong
			// password are refused.
			if tc.mechanism != "" {
				bad := cfg.Kafka
				t.Setenv("EXFILGUARD_TEST_WRONG_PASSWORD", "wrong")
				bad.SASL.PasswordFile, bad.SASL.PasswordEnv = "", "EXFILGUARD_TEST_WRONG_PASSWORD"
				d, err := NewDialer(&bad)
				if err != nil {
					t.Fatal(err)
				}
				if conn, err := d.DialLeader(context.Background(), "tcp", c.ListenAddrs()[0], "audit", 0); err == nil {
					conn.Close()
					t.Fatal("a wrong password was accepted")
				}
			}
			r := start(t, cfg, uint64(len(lines)))
			r.wait(t)
			if st := r.stop(t); st.Events != uint64(len(lines)) {
				t.Errorf("processed %d, want %d", st.Events, len(lines))
			}
		})
	}
}

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, the client's as files the config points at.
type pki struct {
	server, client            *tls.Config
	caFile, certFile, keyFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c, certPEM, keyPEM
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv, _, _ := leaf("kafka", x509.ExtKeyUsageServerAuth)
	cli, certPEM, keyPEM := leaf("exfilguard", x509.ExtKeyUsageClientAuth)
	p := &pki{
		server:   &tls.Config{Certificates: []tls.Certificate{srv}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12},
		client:   &tls.Config{Certificates: []tls.Certificate{cli}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		caFile:   filepath.Join(dir, "ca.crt"),
		certFile: filepath.Join(dir, "client.crt"),
		keyFile:  filepath.Join(dir, "client.key"),
	}
	for f, b := range map[string][]byte{p.caFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), p.certFile: certPEM, p.keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
