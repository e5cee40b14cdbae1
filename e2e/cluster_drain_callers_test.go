package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestClusterSigtermCallersOnDraining (check 5, the callers of the draining sentinel itself):
// SIGTERM of B under load of at-least-once callers attached to B (a URL list starting with
// B's: node.Config.AttachURL) and to A, replicas r1 on B and r2 on C. B refuses their new
// calls DRAINING while the calls in flight finish; each refused call is sent again once B's
// drain has closed its link and the caller has attached to the next sentinel of its list (or
// after its back-off). Every call ends in a reply: 0 failed. The nacks and the calls executed
// twice are reported.
func TestClusterSigtermCallersOnDraining(t *testing.T) {
	cf := startCluster(t, 3, "2s")
	ex := newExecLog()
	cf.startALOReplicas(ex)
	nc := &nackCounter{}
	clients := newALOClients(t, cf, nc, true, 1, 1, 1, 1, 0, 0, 0, 0)
	load := startALOLoad(t, ex, nc, clients, 2)
	time.Sleep(time.Second)
	okBefore := load.ok.Load()

	exited := cf.sigterm(1)
	cf.waitReplicas(2, 1) // r1 re-attached to another sentinel
	time.Sleep(2 * time.Second)
	load.finish()

	nacks, byCode := nc.total()
	var gap, gapB time.Duration
	for _, c := range clients {
		gap = max(gap, c.gap())
		if c.home == 1 {
			gapB = max(gapB, c.gap())
		}
	}
	t.Logf("SIGTERM of s1: exited %v later", exited.Round(time.Millisecond))
	t.Logf("calls: %d ok (%d before the signal), %d failed, slowest %v, longest wait between answers %v (%v for the callers on s1); nacks received %d (%s); executed twice: %d %v",
		load.ok.Load(), okBefore, load.failed.Load(), time.Duration(load.slowest.Load()).Round(time.Millisecond),
		gap.Round(time.Millisecond), gapB.Round(time.Millisecond), nacks, byCode, len(ex.dupes()), ex.dupes())
	t.Logf("s1 drain log:\n%s", tailLines(grepLines(cf.procs[1].out.String(), "drain"), 8))
	if load.failed.Load() != 0 {
		t.Errorf("%d calls failed, want 0: %v", load.failed.Load(), load.firstErrs())
	}
	for i, c := range clients {
		a, b := whoami(t, c.n), whoami(t, c.n)
		if a != b {
			t.Errorf("client %d: answered by %s then %s after the drain, want one replica", i, a, b)
		}
	}
}

// grepLines keeps the lines of s containing any of subs.
func grepLines(s string, subs ...string) string {
	out := ""
	for _, l := range splitLines(s) {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out += l + "\n"
				break
			}
		}
	}
	return out
}
