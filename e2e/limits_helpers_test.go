package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// victimServes checks that a real (SDK) replica and client still get 10 calls through after an
// attack: the attack hurt only the attacker.
func victimServes(t *testing.T, f *fabric, client *node.Node) {
	t.Helper()
	if client == nil {
		client = f.connect(f.nodeConfig())
	}
	for i := 0; i < 10; i++ {
		var sum float64
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := client.Call(ctx, mathagent.Address, "add", map[string]any{"x": i, "y": 1}, &sum)
		cancel()
		if err != nil || sum != float64(i+1) {
			t.Fatalf("victim call %d after the attack: %v, %v", i, sum, err)
		}
	}
}

// nackOf decodes a DeliveryAck; it fails the test for anything else.
func nackOf(t *testing.T, e *envelope.Envelope) *envelope.DeliveryAck {
	t.Helper()
	fr, err := e.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := fr.(*envelope.DeliveryAck)
	if !ok {
		t.Fatalf("want DeliveryAck, got %s", e.Frame)
	}
	return a
}

// dialStatus tries a WebSocket attach and returns the HTTP status of a refused upgrade and its
// body (the reason), or 101 when the upgrade succeeded.
func dialStatus(t *testing.T, f *fabric, id string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, f.url()+"/"+id, nil)
	if err == nil {
		t.Cleanup(func() { _ = ws.CloseNow() })
		return http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// memSampler records the peak of the live Go heap (after each GC) and of the process RSS while
// it runs: the fabric runs in the test process, so this is the sentinel's memory plus the
// test's own.
type memSampler struct {
	stop     chan struct{}
	done     sync.WaitGroup
	mu       sync.Mutex
	peakLive uint64
	peakRSS  uint64
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// vmRSS reads VmRSS from /proc/self/status (0 where there is none).
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func startMemSampler() *memSampler {
	m := &memSampler{stop: make(chan struct{})}
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			live, rss := liveHeap(), vmRSS()
			m.mu.Lock()
			m.peakLive, m.peakRSS = max(m.peakLive, live), max(m.peakRSS, rss)
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) finish() (peakLive, peakRSS uint64) {
	close(m.stop)
	m.done.Wait()
	return m.peakLive, m.peakRSS
}

// isNack reports whether err is a sentinel nack with code.
func isNack(err error, code string) bool {
	var ne *node.NackError
	return errors.As(err, &ne) && ne.Code == code
}

// pendingOn reads how many requests the sentinel tracks as open on peer id (/stats).
func (f *fabric) pendingOn(t *testing.T, id string) int {
	t.Helper()
	peers, _ := f.stats(t)["peers"].([]any)
	for _, p := range peers {
		m, _ := p.(map[string]any)
		if m["systemId"] == id {
			n, _ := m["pending"].(float64)
			return int(n)
		}
	}
	t.Fatalf("peer %s not in /stats", id)
	return 0
}
