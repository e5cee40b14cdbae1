package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/ca"
)

// startService runs a subcommand in-process on a random port and returns its base address
// and a stop function that cancels it and returns its error.
func startService(t *testing.T, run func(context.Context, []string) error, args ...string) (addr string, stop func() error) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-addr-file", addrFile, "-log-level", "error"}, args...))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("service exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("service did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var stopped bool
	var stopErr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(shutdownGrace + time.Second):
				t.Fatal("service did not stop")
			}
		}
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

func getBody(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOAuth2ServesTokensAndHealthAndStops(t *testing.T) {
	t.Setenv("FAME_JWT_ISSUER", "http://oauth2.test")
	t.Setenv("FAME_JWT_CLIENT_ID", "c1")
	t.Setenv("FAME_JWT_CLIENT_SECRET", "s1")
	addr, stop := startService(t, runOAuth2)
	base := "http://" + addr

	if code, body := getBody(t, http.DefaultClient, base+"/healthz"); code != 200 || !strings.Contains(body, `"service":"oauth2"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := getBody(t, http.DefaultClient, base+"/.well-known/jwks.json"); code != 200 || !strings.Contains(body, `"EdDSA"`) {
		t.Fatalf("jwks: %d %s", code, body)
	}
	resp, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"c1"}, "client_secret": {"s1"}})
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if resp.StatusCode != 200 || tr.AccessToken == "" || tr.Scope != "node.connect" {
		t.Fatalf("token: %d %+v", resp.StatusCode, tr)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop returned %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after stop")
	}
}

func TestOAuth2RefusesIncompleteConfig(t *testing.T) {
	t.Setenv("FAME_JWT_ISSUER", "")
	t.Setenv("FAME_JWT_CLIENT_ID", "c1")
	t.Setenv("FAME_JWT_CLIENT_SECRET", "s1")
	if err := runOAuth2(context.Background(), []string{"-listen", "127.0.0.1:0"}); err == nil {
		t.Fatal("started without an issuer")
	}
}

func TestCAInitIdempotentAndServerCertOverTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if err := runCA(context.Background(), []string{"init", "-dir", dir}); err != nil {
		t.Fatal(err)
	}
	root1, err := os.ReadFile(filepath.Join(dir, ca.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, "tls", "svc")
	if err := runCA(context.Background(), []string{"init", "-dir", dir, "-dns", "localhost,127.0.0.1", "-out", prefix}); err != nil {
		t.Fatal(err)
	}
	root2, _ := os.ReadFile(filepath.Join(dir, ca.RootCertFile))
	if !bytes.Equal(root1, root2) {
		t.Fatal("second init replaced the root")
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server key: %v %v", fi, err)
	}

	// The CA itself, served over HTTPS with that certificate, verified against the root only.
	t.Setenv("FAME_CA_DIR", dir)
	t.Setenv("FAME_CA_ALLOW_UNAUTHENTICATED", "true")
	addr, _ := startService(t, runCA, "-tls-cert", prefix+".crt", "-tls-key", prefix+".key")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root1)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	if code, body := getBody(t, c, "https://"+addr+"/healthz"); code != 200 || !strings.Contains(body, `"service":"ca"`) {
		t.Fatalf("healthz over TLS: %d %s", code, body)
	}
	if code, body := getBody(t, c, "https://"+addr+ca.TrustBundlePath); code != 200 || !strings.Contains(body, "BEGIN CERTIFICATE") && !strings.Contains(body, "x5c") {
		t.Fatalf("trust bundle: %d %.200s", code, body)
	}
	// Plain HTTP on the TLS port must not work.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("TLS listener answered plain HTTP")
		}
	}
}

func TestCAFlagErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FAME_CA_DIR", "")
	for _, args := range [][]string{
		{"init"},                                  // no dir
		{"init", "-dir", dir, "-dns", "a"},        // dns without out
		{"server-cert", "-dir", dir},              // nothing to issue
		{"server-cert", "-dir", dir, "-out", "x"}, // out without dns
		{"cluster-cert", "-dir", dir},             // nothing to issue
	} {
		if err := runCA(context.Background(), args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

func TestServeFlagsTLSPairRequired(t *testing.T) {
	for _, f := range []serveFlags{{tlsCert: "a.crt"}, {tlsKey: "a.key"}, {tlsCert: "/nonexistent.crt", tlsKey: "/nonexistent.key"}} {
		if _, err := f.tlsConfig(); err == nil {
			t.Errorf("%+v: accepted", f)
		}
	}
	if tc, err := (&serveFlags{}).tlsConfig(); tc != nil || err != nil {
		t.Fatalf("no TLS flags: %v %v", tc, err)
	}
}

func TestWelcomeNeedsTarget(t *testing.T) {
	t.Setenv("FAME_WELCOME_TARGET_SYSTEM_ID", "")
	if err := runWelcome(context.Background(), []string{"-listen", "127.0.0.1:0"}); err == nil {
		t.Fatal("started without a placement target")
	}
}

func TestWelcomeServes(t *testing.T) {
	t.Setenv("FAME_WELCOME_TARGET_SYSTEM_ID", "Cb8WVCC4ML5RsFM")
	t.Setenv("FAME_WELCOME_ATTACH_URL", "ws://sentinel/fame/v1/attach/ws/downstream")
	t.Setenv("FAME_WELCOME_ALLOW_ANONYMOUS", "true")
	addr, _ := startService(t, runWelcome)
	if code, body := getBody(t, http.DefaultClient, "http://"+addr+"/fame/welcome/.well-known/jwks.json"); code != 200 || !strings.Contains(body, "Ed25519") {
		t.Fatalf("welcome jwks: %d %s", code, body)
	}
	if code, _ := getBody(t, http.DefaultClient, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
}

// With bearer authentication the welcome service needs client grants; a grant of the logical
// "*" stops it at start; a grants file is read with -grants-file.
func TestWelcomeGrants(t *testing.T) {
	t.Setenv("FAME_WELCOME_TARGET_SYSTEM_ID", "Cb8WVCC4ML5RsFM")
	t.Setenv("FAME_WELCOME_ATTACH_URL", "wss://sentinel/fame/v1/attach/ws/downstream")
	t.Setenv("FAME_JWT_TRUSTED_ISSUER", "https://oauth2:8099")
	t.Setenv("FAME_WELCOME_GRANTS", "")
	if err := runWelcome(context.Background(), []string{"-listen", "127.0.0.1:0", "-log-level", "error"}); err == nil ||
		!strings.Contains(err.Error(), "no client grants") {
		t.Fatalf("started without grants: %v", err)
	}
	dir := t.TempDir()
	star := filepath.Join(dir, "star")
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(star, []byte("sub=a system_ids=a* logicals=*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("# replicas\nsub=r system_ids=r* logicals=*.fame.fabric\nsub=c system_ids=*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runWelcome(context.Background(), []string{"-listen", "127.0.0.1:0", "-log-level", "error", "-grants-file", star}); err == nil ||
		!strings.Contains(err.Error(), `logical "*"`) {
		t.Fatalf("started with a grant of *: %v", err)
	}
	addr, _ := startService(t, runWelcome, "-grants-file", good)
	if code, body := getBody(t, http.DefaultClient, "http://"+addr+"/metrics"); code != 200 || !strings.Contains(body, "fame_welcome_admitted_total") {
		t.Fatalf("metrics: %d %s", code, body)
	}
}
