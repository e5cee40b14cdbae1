package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
)

// The attacker is a raw nats.go client (not our Connect) aimed at an
// embedded server's client port. Every way in without both the cluster's
// certificate and its credentials is refused; the positive control with
// both gets in. (The client port listens on loopback by default; the test
// also stands for an operator who exposed it.)
func TestAttackClientWithoutCredentials(t *testing.T) {
	url := shared.members[1].Embedded.ClientURL()
	p := shared.pki
	good, err := TLSConfig(p.good)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := TLSConfig(p.rogue)
	if err != nil {
		t.Fatal(err)
	}
	noCert := good.Clone()
	noCert.Certificates = nil
	// Go's TLS client sends no certificate the server's CA list does not
	// name; the attacker sends its rogue one regardless.
	rogueCert := rogue.Certificates[0]
	rogue.Certificates = nil
	rogue.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogueCert, nil }
	cases := []struct {
		name string
		url  string
		opts []nats.Option
		want string // substring of the refusal
		auth bool   // the refusal must be a NATS authorization error
	}{
		{"no credentials, good certificate", url, []nats.Option{nats.Secure(good)}, "Authorization Violation", true},
		{"wrong password, good certificate", url, []nats.Option{nats.Secure(good), nats.UserInfo(testUser, "guess")}, "Authorization Violation", true},
		{"unknown user, good certificate", url, []nats.Option{nats.Secure(good), nats.UserInfo("admin", testPass)}, "Authorization Violation", true},
		{"credentials, no client certificate", url, []nats.Option{nats.Secure(noCert), nats.UserInfo(testUser, testPass)}, "tls", false},
		{"credentials, certificate of another CA", url, []nats.Option{nats.Secure(rogue), nats.UserInfo(testUser, testPass)}, "tls", false},
	}
	m := shared.members[1].Metrics
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason := "tls"
			if tc.auth {
				reason = "auth"
			}
			before := refusals(t, m, "client", reason)
			opts := append([]nats.Option{nats.NoReconnect(), nats.Timeout(3 * time.Second)}, tc.opts...)
			nc, err := nats.Connect(tc.url, opts...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if tc.auth && !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("refusal %v, want an authorization error", err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refusal %q, want %q in it", err, tc.want)
			}
			// The server logs the refusal with the peer's address; the
			// counter is fed from that line.
			eventually(t, 5*time.Second, "fame_cluster_refused_total{client,"+reason+"} moved", func() bool {
				return refusals(t, m, "client", reason) > before
			})
			t.Logf("refused: %v", err)
		})
	}
	t.Run("credentials in plain text, no TLS", func(t *testing.T) {
		// nats.go upgrades to TLS when the server asks; a raw socket does not.
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tls://"), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		info, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(info, "INFO ") || !strings.Contains(info, `"tls_required":true`) {
			t.Fatalf("INFO %q %v", info, err)
		}
		fmt.Fprintf(conn, "CONNECT {\"user\":%q,\"pass\":%q,\"verbose\":false}\r\nPING\r\n", testUser, testPass)
		var got []string
		var end error
		for end == nil {
			var line string
			line, end = r.ReadString('\n')
			if line != "" {
				got = append(got, strings.TrimSpace(line))
			}
		}
		all := strings.Join(got, " | ")
		var ne net.Error
		if strings.Contains(all, "PONG") || (errors.As(end, &ne) && ne.Timeout()) {
			t.Fatalf("plain-text client got %q, then %v (want the server to close)", all, end)
		}
		t.Logf("refused: server sent %q and closed (%v)", all, end)
	})
	t.Run("control: certificate and credentials", func(t *testing.T) {
		nc, err := nats.Connect(url, nats.NoReconnect(), nats.Secure(good), nats.UserInfo(testUser, testPass))
		if err != nil {
			t.Fatalf("the legitimate client was refused: %v", err)
		}
		nc.Close()
	})
}

// TestAttackRogueRoute: a nats-server that knows the seed addresses but
// lacks the route password, or holds a certificate from another CA, never
// becomes a route of the cluster (so it can neither read nor write the
// buckets nor see the envelopes).
func TestAttackRogueRoute(t *testing.T) {
	t.Parallel() // mostly waiting: runs beside the other slow ones
	p := shared.pki
	var before []int
	for _, m := range shared.members {
		before = append(before, m.Embedded.Routes())
	}
	total := func(reason string) float64 {
		n := 0.0
		for _, m := range shared.members {
			n += refusals(t, m.Metrics, "route", reason)
		}
		return n
	}
	for _, tc := range []struct {
		name   string
		tls    TLSFiles
		pass   string
		reason string
	}{
		{"wrong route password", p.good, "guess", "auth"},
		{"certificate of another CA", p.rogue, testPass, "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shared.base
			cfg.SentinelID = "rogue"
			cfg.Listen = "127.0.0.1:0"
			cfg.Routes = shared.seeds
			cfg.DataDir = filepath.Join(t.TempDir(), "rogue")
			cfg.TLS = tc.tls
			cfg.Auth.Password = tc.pass
			was := total(tc.reason)
			e, err := StartEmbedded(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Kill()
			// The rogue counts a route the moment it has the seed's INFO,
			// before the seed checks its CONNECT and closes it, so the
			// rogue's own count proves nothing. What must hold: no member
			// ever counts it, and nothing of the cluster is reachable through
			// it. nats-server retries a seed every second; give it two tries.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				for i, m := range shared.members {
					if n := m.Embedded.Routes(); n != before[i] {
						t.Fatalf("%s has %d routes, had %d", m.Config.SentinelID, n, before[i])
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			nc, err := Connect(cfg, e, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if _, err := js.KeyValue(ctx, BindingsBucket("shared")); err == nil {
				t.Fatal("the rogue server reaches the cluster's bindings")
			}
			if now := total(tc.reason); now <= was {
				t.Fatalf("fame_cluster_refused_total{route,%s} did not move (%v)", tc.reason, now)
			}
		})
	}
}

// TestTLSConfig: the helper refuses what it cannot use.
func TestTLSConfig(t *testing.T) {
	p := shared.pki
	if _, err := TLSConfig(TLSFiles{Cert: p.good.Cert, Key: p.good.Key}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no CA: %v", err)
	}
	if _, err := TLSConfig(TLSFiles{Cert: p.good.Cert, Key: p.rogue.Key, CA: p.good.CA}); err == nil {
		t.Fatal("mismatched key accepted")
	}
	if _, err := TLSConfig(TLSFiles{Cert: p.good.Cert, Key: p.good.Key, CA: p.good.Key}); err == nil {
		t.Fatal("a key file as CA accepted")
	}
	c, err := TLSConfig(p.good)
	if err != nil || c.MinVersion != tls.VersionTLS13 || c.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("%v %+v", err, c)
	}
}

func refusals(t *testing.T, m *Metrics, link, reason string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.refused.WithLabelValues(link, reason).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}
