package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// preAuthBytes is the sentinel's heap and stack memory per upgraded connection that has not sent
// NodeAttach: the client side is a bare TCP socket that did the upgrade by hand, so it costs
// next to nothing in this process.
func preAuthBytes(t *testing.T, f *fabric, n int) float64 {
	t.Helper()
	mem := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc + m.StackInuse
	}
	before := mem()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /fame/v1/attach/ws/downstream/pre%d HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", i, f.addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade %d: %v %v", i, resp, err)
		}
	}
	waitUntil(t, 5*time.Second, "every upgrade served", func() bool { return f.metric(t, "fame_connections") >= float64(n) })
	after := mem()
	return float64(int64(after)-int64(before)) / float64(n)
}

// TestPreAuthConnectionCost: an upgraded connection that never attaches holds no send queue and
// no writer goroutine; what is left is the reader waiting for NodeAttach (its goroutine, the
// HTTP connection's buffers).
func TestPreAuthConnectionCost(t *testing.T) {
	f := newFabric(t, nil)
	per := preAuthBytes(t, f, 300)
	t.Logf("memory per unauthenticated connection: %.1f KB (heap + goroutine stacks, sentinel side)", per/1024)
	// The old fixed 4,096-slot queue alone was 32 KB, plus a writer goroutine (64 KB in all
	// measured this way). What is left (about 27 KB) is the reader goroutine's stack and the
	// HTTP/WebSocket buffers.
	bound := 32 << 10
	if raceEnabled {
		bound = 48 << 10 // race-instrumented stacks and allocations are larger (35 KB measured)
	}
	if per > float64(bound) {
		t.Fatalf("an unauthenticated connection holds %.1f KB", per/1024)
	}
	f.startReplica("victim", "fame.fabric", nil, nil)
	victimServes(t, f, nil)
}
