package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// Cluster faults of issue #15 ("How it is checked" 2, 4, 5): real `fame sentinel` processes
// s0 (A), s1 (B), s2 (C) clustered over embedded NATS on loopback; replica r1 on B, r2 on C;
// callers on A. Figures are logged (t.Logf), never asserted.

// TestClusterKillRepinSecureClose (check 2): kill -9 of B with calls in flight, r1 not allowed
// to re-attach (its only URL is B's). Every channel a client on A had opened on r1 gets one
// SecureClose once r1 stayed lost past the grace window; the client re-opens it (a new
// SecureOpen) and its session's calls, plain and on the new channel, are answered by r2. The
// at-least-once callers on A see every call end in a reply (nacks re-sent); a call executed
// twice is counted and reported.
func TestClusterKillRepinSecureClose(t *testing.T) {
	cf := startCluster(t, 3, "1s")
	ex := newExecLog()
	alo := func(c *node.Config) { c.Delivery = node.AtLeastOnce }
	cf.procs[1].startReplica("r1", "*.fame.fabric", ex, alo) // B only: cannot re-attach
	cf.procs[2].startReplica("r2", "*.fame.fabric", ex, alo)
	cf.waitReplicas(2)
	cf.leadKV(1, 0) // the kill also stalls the KV writes until an election

	// Raw clients on A whose sessions are pinned to r1, each with a channel opened there.
	type chanClient struct {
		p      *rawPeer
		cid    string
		closes map[string]int
	}
	var onR1 []*chanClient
	for i := 0; i < 12 && len(onR1) < 3; i++ {
		p := dialRaw(t, cf.procs[0].fabric, fmt.Sprintf("chan%02d", i), nil)
		p.attach()
		c := &chanClient{p: p, cid: fmt.Sprintf("auto-math@fame.fabric-kill%02d", i), closes: map[string]int{}}
		if who, nack, err := rawWhoami(p, "", c.closes); err != nil || who != "r1" {
			if err != nil || nack != "" {
				t.Fatalf("chan%02d whoami: %q %s %v", i, who, nack, err)
			}
			continue
		}
		rawOpen(p, c.cid)
		if who, nack, err := rawWhoami(p, c.cid, c.closes); err != nil || who != "r1" {
			t.Fatalf("chan%02d: a call on its channel answered by %q (nack %q, %v), want r1", i, who, nack, err)
		}
		onR1 = append(onR1, c)
	}
	if len(onR1) == 0 {
		t.Fatal("no raw client session pinned to r1 out of 12")
	}

	nc := &nackCounter{}
	clients, on := aloClientsOn(t, cf, nc, "r1", 0, 0, 0, 0, 0, 0, 0, 0)
	load := startALOLoad(t, ex, nc, clients, 2)
	time.Sleep(time.Second)

	killedAt := time.Now()
	if err := cf.procs[1].cmd.Process.Kill(); err != nil { // SIGKILL: no bye, no lame duck
		t.Fatal(err)
	}
	<-cf.procs[1].exited
	var firstClose time.Duration
	for _, c := range onR1 {
		if !awaitSecureClose(c.p, c.cid, 20*time.Second, c.closes) {
			t.Fatalf("%s: no SecureClose for its channel %s on r1 within 20 s of the kill", c.p.id, c.cid)
		}
		if firstClose == 0 {
			firstClose = time.Since(killedAt)
		}
	}
	closedAt := time.Since(killedAt)
	// The client re-handshakes: a new channel, on the session's new replica.
	var repinned time.Duration
	for i, c := range onR1 {
		if who, nack, err := rawWhoami(c.p, c.cid, c.closes); err != nil || nack != "CHANNEL_CLOSED" {
			t.Fatalf("%s: a request still encrypted for the closed channel: %q nack %q %v, want CHANNEL_CLOSED", c.p.id, who, nack, err)
		}
		cid2 := c.cid + "-again"
		rawOpen(c.p, cid2)
		who, nack, err := rawWhoami(c.p, cid2, c.closes)
		if err != nil || who != "r2" {
			t.Fatalf("%s: a call on the re-opened channel: %q nack %q %v, want r2", c.p.id, who, nack, err)
		}
		if i == 0 {
			repinned = time.Since(killedAt)
		}
		if who, nack, err := rawWhoami(c.p, "", c.closes); err != nil || who != "r2" {
			t.Fatalf("%s: a plain call of the session: %q nack %q %v, want r2", c.p.id, who, nack, err)
		}
	}
	time.Sleep(2 * time.Second) // a few more sweeps: still one SecureClose per channel
	load.finish()
	for _, c := range onR1 {
		for {
			e, err := c.p.read(100 * time.Millisecond)
			if err != nil {
				break
			}
			if e.FrameType() == "SecureClose" {
				c.closes["late"]++
			}
		}
		if c.closes[c.cid] != 1 || len(c.closes) != 1 {
			t.Errorf("%s: SecureCloses %v, want exactly one, for %s", c.p.id, c.closes, c.cid)
		}
	}
	nacks, byCode := nc.total()
	t.Logf("kill -9 of s1: first SecureClose %v, last %v after the kill (down verdict + grace 1 s); first answer on the re-opened channel %v after the kill",
		firstClose.Round(time.Millisecond), closedAt.Round(time.Millisecond), repinned.Round(time.Millisecond))
	t.Logf("down verdicts on s0: route_closed %v, silent %v (heartbeats 1 s: one missed beat with the route closed, else 3): %s",
		cf.procs[0].metric(t, "fame_cluster_peer_down_total", `why="route_closed"`), cf.procs[0].metric(t, "fame_cluster_peer_down_total", `why="silent"`),
		grepLines(cf.procs[0].out.String(), `to=down`))
	t.Logf("at-least-once callers on s0 (sessions per replica before %v): %d ok, %d failed, slowest call %v; nacks received %d (%s); executed twice: %d %v",
		on, load.ok.Load(), load.failed.Load(), time.Duration(load.slowest.Load()).Round(time.Millisecond), nacks, byCode, len(ex.dupes()), ex.dupes())
	if load.failed.Load() != 0 {
		t.Errorf("%d at-least-once calls failed, want 0: %v", load.failed.Load(), load.firstErrs())
	}
	if n := cf.procs[0].metric(t, "fame_cluster_secure_close_total", `why="lost"`); n != float64(len(onR1)) {
		t.Errorf("s0 fame_cluster_secure_close_total{why=lost} = %v, want %d (one per channel)", n, len(onR1))
	}
	if n := cf.procs[0].metric(t, "fame_cluster_repins_total"); n < float64(len(onR1)) {
		t.Errorf("s0 re-pinned %v sessions, want at least the %d raw sessions on r1", n, len(onR1))
	}
	for i, c := range clients {
		if after := whoami(t, c.n); after != "r2" {
			t.Errorf("client %d: answered by %s after the kill, want r2 (r1 is gone)", i, after)
		}
	}
}

// TestClusterKillReattachKeepsChannel (check 2, last part): kill -9 of B, r1 allowed to
// re-attach (to C) within the grace window: the channels clients on A opened on r1 are not
// closed (no SecureClose, no re-handshake) and their calls are answered by r1 again.
func TestClusterKillReattachKeepsChannel(t *testing.T) {
	cf := startCluster(t, 3, "40s")
	cf.procs[1].startReplica("r1", "*.fame.fabric", nil, func(c *node.Config) { c.AttachURL = cf.rotating(1) })
	cf.procs[2].startReplica("r2", "*.fame.fabric", nil, nil)
	cf.waitReplicas(2)
	type chanClient struct {
		p      *rawPeer
		cid    string
		closes map[string]int
	}
	var onR1 []*chanClient
	for i := 0; i < 12 && len(onR1) < 3; i++ {
		p := dialRaw(t, cf.procs[0].fabric, fmt.Sprintf("keep%02d", i), nil)
		p.attach()
		c := &chanClient{p: p, cid: fmt.Sprintf("auto-math@fame.fabric-keep%02d", i), closes: map[string]int{}}
		if who, nack, err := rawWhoami(p, "", c.closes); err != nil || nack != "" {
			t.Fatalf("keep%02d whoami: %q %s %v", i, who, nack, err)
		} else if who != "r1" {
			continue
		}
		rawOpen(p, c.cid)
		onR1 = append(onR1, c)
	}
	if len(onR1) == 0 {
		t.Fatal("no raw client session pinned to r1 out of 12")
	}
	killedAt := time.Now()
	if err := cf.procs[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-cf.procs[1].exited
	for _, i := range []int{0, 2} {
		waitUntil(t, 15*time.Second, cf.ids[i]+" seeing s1 down", func() bool {
			return cf.procs[i].metric(t, "fame_cluster_peer_transitions_total", `state="down"`) >= 1
		})
	}
	cf.waitReplicas(2, 1)
	t.Logf("r1 visible again on s0 and s2 %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	for _, c := range onR1 {
		var who, nack string
		var err error
		waitUntil(t, 30*time.Second, c.p.id+" answered on its channel", func() bool {
			who, nack, err = rawWhoami(c.p, c.cid, c.closes)
			return err == nil && nack == ""
		})
		if who != "r1" {
			t.Errorf("%s: the call on its channel answered by %q, want r1 (re-attached within the grace window)", c.p.id, who)
		}
		if len(c.closes) != 0 {
			t.Errorf("%s: SecureCloses %v, want none: r1 came back within the grace window", c.p.id, c.closes)
		}
	}
	if n := cf.procs[0].metric(t, "fame_cluster_secure_close_total", `why="lost"`); n != 0 {
		t.Errorf("s0 sent %v SecureCloses, want 0", n)
	}
}

// TestClusterSigstopSentinel (check 4): B is stopped (SIGSTOP, a real frozen process: its
// sockets stay open, it answers nothing). The survivors declare it down by heartbeats; the
// calls of sessions on r1 (on B) end in a reply (at-least-once callers re-send on the nacks);
// the callers whose replica is on C keep being answered during the KV write stall (longest
// gap logged). After SIGCONT, B rejoins: every sentinel sees both replicas up again and every
// session is answered by one replica.
func TestClusterSigstopSentinel(t *testing.T) {
	cf := startCluster(t, 3, "2s")
	ex := newExecLog()
	cf.startALOReplicas(ex)
	cf.leadKV(1, 0) // B leads the KV streams: stopping it stalls every KV write
	nc := &nackCounter{}
	clients, _ := aloClientsOn(t, cf, nc, "r2", 0, 0, 0, 0, 0, 0, 2, 2)
	load := startALOLoad(t, ex, nc, clients, 2)
	time.Sleep(time.Second)

	downBefore := cf.procs[0].metric(t, "fame_cluster_peer_transitions_total", `state="down"`)
	upBefore := cf.procs[0].metric(t, "fame_cluster_peer_transitions_total", `state="up"`)
	stoppedAt := time.Now()
	if err := cf.procs[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = cf.procs[1].cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	for _, i := range []int{0, 2} {
		waitUntil(t, 15*time.Second, cf.ids[i]+" seeing s1 down", func() bool {
			return cf.procs[i].metric(t, "fame_cluster_peer_transitions_total", `state="down"`) >= downBefore+1
		})
	}
	detected := time.Since(stoppedAt)
	// A new session during the write stall: its pin is written in the background, so its
	// first call does not wait for the election.
	fresh := cf.procs[0].connect(cf.clientConfig(0, false))
	freshAt := time.Now()
	freshWho := whoami(t, fresh)
	freshTook := time.Since(freshAt)
	writesBefore := cf.procs[0].metric(t, "fame_cluster_binding_writes_total", `op="create"`, `result="won"`)
	time.Sleep(8 * time.Second) // through the KV streams' leader election (s1 led them)
	if err := cf.procs[1].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	contAt := time.Now()
	waitUntil(t, 20*time.Second, "s0 hearing s1 again", func() bool {
		return cf.procs[0].metric(t, "fame_cluster_peer_transitions_total", `state="up"`) >= upBefore+1
	})
	rejoined := time.Since(contAt)
	cf.waitReplicas(2)
	time.Sleep(2 * time.Second)
	load.finish()

	var gapR2, gapR1 time.Duration
	for _, c := range clients {
		if c.before == "r2" {
			gapR2 = max(gapR2, c.gap())
		} else {
			gapR1 = max(gapR1, c.gap())
		}
	}
	nacks, byCode := nc.total()
	t.Logf("SIGSTOP of s1: declared down by s0 and s2 %v after the stop; s0 heard it again %v after SIGCONT",
		detected.Round(time.Millisecond), rejoined.Round(time.Millisecond))
	t.Logf("longest wait between two answers: %v for sessions on r2 (on s2), %v for sessions on r1 (on the stopped s1)",
		gapR2.Round(time.Millisecond), gapR1.Round(time.Millisecond))
	t.Logf("s0's down verdicts by evidence: silent %v, route_closed %v (a frozen process keeps its routes)",
		cf.procs[0].metric(t, "fame_cluster_peer_down_total", `why="silent"`), cf.procs[0].metric(t, "fame_cluster_peer_down_total", `why="route_closed"`))
	t.Logf("peer-down verdicts on s0 %v, s2 %v (1 each: s1 only); s0 nacked %v calls within the grace window, %v with no replica live",
		cf.procs[0].metric(t, "fame_cluster_peer_transitions_total", `state="down"`)-downBefore, cf.procs[2].metric(t, "fame_cluster_peer_transitions_total", `state="down"`),
		cf.procs[0].metric(t, "fame_cluster_grace_nacks_total"), cf.procs[0].metric(t, "fame_cluster_away_nacks_total"))
	t.Logf("a new session's first call during the stall: answered by %s in %v; s0's binding creates confirmed before/after the stall: %v/%v",
		freshWho, freshTook.Round(time.Millisecond), writesBefore, cf.procs[0].metric(t, "fame_cluster_binding_writes_total", `op="create"`, `result="won"`))
	t.Logf("calls: %d ok, %d failed, slowest %v; nacks received %d (%s); executed twice: %d",
		load.ok.Load(), load.failed.Load(), time.Duration(load.slowest.Load()).Round(time.Millisecond), nacks, byCode, len(ex.dupes()))
	t.Logf("after SIGCONT: s1 marked peers down %v time(s), nacked %v requests it had forwarded (PEER_UNREACHABLE); re-pins on s0 %v, s2 %v; s1 log tail:\n%s",
		cf.procs[1].metric(t, "fame_cluster_peer_transitions_total", `state="down"`), cf.procs[1].metric(t, "fame_cluster_peer_nacks_total"),
		cf.procs[0].metric(t, "fame_cluster_repins_total"), cf.procs[2].metric(t, "fame_cluster_repins_total"), tailLines(cf.procs[1].out.String(), 15))
	if load.failed.Load() != 0 {
		t.Errorf("%d at-least-once calls failed, want 0: %v", load.failed.Load(), load.firstErrs())
	}
	// Rejoined sanely: every session answered by one replica, from every sentinel.
	for i, c := range clients {
		a, b := whoami(t, c.n), whoami(t, c.n)
		if a != b {
			t.Errorf("client %d: answered by %s then %s after the rejoin, want one replica", i, a, b)
		}
	}
	c1 := cf.procs[1].connect(cf.clientConfig(1, false))
	for k := 0; k < 5; k++ {
		if who := whoami(t, c1); who != "r1" && who != "r2" {
			t.Fatalf("a client of the rejoined s1 answered by %q", who)
		}
	}
}

// TestClusterSigtermSentinel (check 5): SIGTERM of B under load of at-least-once callers on A
// whose sessions are on r1 (on B) and r2. B drains: its heartbeats say draining, A and C stop
// placing pins on r1 and move its sessions at their next call (no grace, no nack), the calls
// in flight on r1 finish, then B closes its connections (r1 re-attaches elsewhere) and leaves
// the cluster (bye). Every call ends in a reply and no caller receives a nack.
func TestClusterSigtermSentinel(t *testing.T) {
	cf := startCluster(t, 3, "2s")
	ex := newExecLog()
	cf.startALOReplicas(ex)
	cf.leadKV(1, 0) // its lame duck must move the KV leadership without a stall seen by callers
	nc := &nackCounter{}
	clients, on := aloClientsOn(t, cf, nc, "r1", 0, 0, 0, 0, 0, 0, 0, 0)
	load := startALOLoad(t, ex, nc, clients, 2)
	time.Sleep(time.Second)
	okBefore := load.ok.Load()

	exited := cf.sigterm(1)
	cf.waitReplicas(2, 1) // r1 re-attached to another sentinel
	time.Sleep(2 * time.Second)
	load.finish()

	nacks, byCode := nc.total()
	var gap time.Duration
	for _, c := range clients {
		gap = max(gap, c.gap())
	}
	t.Logf("SIGTERM of s1: exited %v later; sessions per replica before %v", exited.Round(time.Millisecond), on)
	t.Logf("calls: %d ok (%d before the signal), %d failed, slowest %v, longest wait between answers %v; nacks received %d (%s); executed twice: %d",
		load.ok.Load(), okBefore, load.failed.Load(), time.Duration(load.slowest.Load()).Round(time.Millisecond), gap.Round(time.Millisecond), nacks, byCode, len(ex.dupes()))
	t.Logf("s1 log tail:\n%s", tailLines(cf.procs[1].out.String(), 12))
	if load.failed.Load() != 0 {
		t.Errorf("%d calls failed, want 0: %v", load.failed.Load(), load.firstErrs())
	}
	if nacks != 0 {
		t.Errorf("the callers received %d nacks (%s), want 0 with the drain", nacks, byCode)
	}
	if n := cf.procs[0].metric(t, "fame_cluster_repins_total"); n < float64(on["r1"]) {
		t.Errorf("s0 re-pinned %v sessions, want the %d on r1", n, on["r1"])
	}
	for i, c := range clients {
		a, b := whoami(t, c.n), whoami(t, c.n)
		if a != b {
			t.Errorf("client %d: answered by %s then %s after the drain, want one replica", i, a, b)
		}
	}
}

func tailLines(s string, n int) string {
	lines := splitLines(s)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += "  " + l + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
