package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// TestReplyToCallerNotYetReattached: the sentinel is killed while an at-least-once call is in
// flight; after its restart the replica re-attaches before the caller and sends its reply
// while the caller's path has no route. Found by the chaos harness (#20): the replica gave the
// reply up at the first NO_ROUTE nack, and the caller's re-send of the request, recognised by
// the replica as a duplicate, was acknowledged and never answered, so the call timed out. The
// reply is now re-sent under its retry policy until the caller is back.
func TestReplyToCallerNotYetReattached(t *testing.T) {
	env := map[string]string{"FAME_NODE_ID": "ReplySentinel01", "FAME_ADMIN_TOKEN": drainAdminToken}
	p := startSentinelProc(t, env)
	_, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	gatedReplica(t, p.fabric, "reply-gated", 0, started, release) // re-attaches within 50–500 ms

	c := p.nodeConfig()
	c.Delivery = node.AtLeastOnce
	c.CallTimeout = 60 * time.Second
	gate := newDialGate() // the caller re-attaches only when the test says
	c.HTTPClient = gate.client()
	caller := p.connect(c)
	type result struct {
		reply string
		err   error
	}
	out := make(chan result, 1)
	go func() {
		var r result
		r.err = caller.Call(context.Background(), mathagent.Address, "gate", map[string]any{}, &r.reply)
		out <- r
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the call never reached the replica")
	}
	gate.hold()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	p2 := startSentinelProc(t, map[string]string{"FAME_NODE_ID": "ReplySentinel01", "FAME_ADMIN_TOKEN": drainAdminToken, "FAME_LISTENER_PORT": port})
	// Released once the replica is back and before the caller is: its reply meets no route.
	waitUntil(t, 20*time.Second, "the replica to re-attach", func() bool {
		return strings.Contains(getStats(p2.addr), "math@fame.fabric")
	})
	releaseOnce.Do(func() { close(release) })
	// The reply meets no route to the caller (NO_ROUTE) until the caller is let back.
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(getStats(p2.addr), caller.SystemID()) {
		t.Fatal("the caller re-attached while its dials were held")
	}
	gate.release()
	select {
	case r := <-out:
		if r.err != nil || r.reply != "passed" {
			t.Fatalf("call: reply %q, err %v; want \"passed\"", r.reply, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no answer 30 s after the replica replied")
	}
}

// getStats is the sentinel's /stats (admin token drainAdminToken), "" on any error.
func getStats(addr string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/stats", nil)
	req.Header.Set("Authorization", "Bearer "+drainAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return ""
	}
	return string(b)
}
