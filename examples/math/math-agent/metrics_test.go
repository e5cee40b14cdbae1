package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestServeMetricsLoopbackOnly: the metrics and profiles have no access control, so an address
// that is not loopback is refused; on loopback they serve go_goroutines and the pprof index.
func TestServeMetricsLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.1.2.3:0", "example.com:0"} {
		if stop, err := serveMetrics(addr, prometheus.NewRegistry(), log); err == nil {
			stop()
			t.Errorf("serveMetrics(%q) accepted a non-loopback address", addr)
		}
	}
	stop, err := serveMetricsAddr("127.0.0.1:0", prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop.close()
	for path, want := range map[string]string{"/metrics": "go_goroutines", "/debug/pprof/": "heap"} {
		resp, err := http.Get("http://" + stop.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %s, no %q", path, resp.Status, want)
		}
	}
}
