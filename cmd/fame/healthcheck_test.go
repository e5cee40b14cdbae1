package main

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"pools":{"math@*.fame.fabric":["r1"]},"caps":["math@r1.fame.fabric"]}`)
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client, err := healthClient("", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		url       string
		wantErr   bool
		unhealthy bool
		contains  string
		wantOut   string
	}{
		{name: "contains", url: srv.URL + "/stats", contains: "math@r1.fame.fabric", wantOut: "200 OK"},
		{name: "lacks", url: srv.URL + "/stats", contains: "math@r2.fame.fabric", wantErr: true, unhealthy: true},
		{name: "503 body not judged", url: srv.URL + "/down", contains: "", wantErr: true, unhealthy: true},
		{name: "200", url: srv.URL + "/ok", wantOut: "200 OK " + srv.URL + "/ok"},
		{name: "204", url: srv.URL + "/nocontent", wantOut: "204 No Content"},
		{name: "503", url: srv.URL + "/down", wantErr: true, unhealthy: true},
		{name: "404", url: srv.URL + "/missing", wantErr: true, unhealthy: true},
		{name: "timeout", url: srv.URL + "/slow", wantErr: true},
		{name: "not http", url: "tcp://127.0.0.1:1", wantErr: true},
		{name: "refused", url: "http://127.0.0.1:1/healthz", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := probe(context.Background(), client, tc.url, tc.contains)
			if (err != nil) != tc.wantErr {
				t.Fatalf("probe(%s) err = %v, wantErr %v", tc.url, err, tc.wantErr)
			}
			if errors.Is(err, errUnhealthy) != tc.unhealthy {
				t.Fatalf("probe(%s) err = %v, unhealthy %v", tc.url, err, tc.unhealthy)
			}
			if !strings.HasPrefix(out, tc.wantOut) {
				t.Fatalf("probe(%s) = %q, want prefix %q", tc.url, out, tc.wantOut)
			}
		})
	}
}

func TestHealthcheckTLSWithCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	// Without the test server's certificate the probe must fail; with it, succeed.
	plain, err := healthClient("", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe(context.Background(), plain, srv.URL, ""); err == nil {
		t.Fatal("probe trusted an unknown certificate")
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := certPEM(srv.Certificate().Raw)
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	withCA, err := healthClient(caFile, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe(context.Background(), withCA, srv.URL, ""); err != nil {
		t.Fatalf("probe with -ca: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := healthClient(bad, time.Second); err == nil {
		t.Fatal("healthClient accepted a file without certificates")
	}
}

func TestRunHealthcheckArgs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	t.Setenv("FAME_CA_CERTS", "")
	if err := runHealthcheck(context.Background(), []string{"-q", srv.URL}); err != nil {
		t.Fatalf("healthy URL: %v", err)
	}
	if err := runHealthcheck(context.Background(), nil); err == nil {
		t.Fatal("no URL accepted")
	}
	if err := runHealthcheck(context.Background(), []string{"-q", srv.URL, srv.URL}); err == nil {
		t.Fatal("two URLs accepted")
	}
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestWelcomeReadyClient: the welcome service's readiness client trusts FAME_CA_CERTS, given
// as a file or inline PEM, and refuses a value without certificates.
func TestWelcomeReadyClient(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	pemBytes := certPEM(srv.Certificate().Raw)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"file": caFile, "inline": string(pemBytes)} {
		c, err := readyClient(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
	}
	plain, _ := readyClient("")
	if _, err := plain.Get(srv.URL); err == nil {
		t.Fatal("the client without FAME_CA_CERTS trusted an unknown certificate")
	}
	if _, err := readyClient("-----BEGIN nothing"); err == nil {
		t.Fatal("readyClient accepted a value without certificates")
	}
}
