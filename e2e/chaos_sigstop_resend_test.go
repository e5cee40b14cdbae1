package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
)

// TestSIGSTOPReplicaCallReSent: a call in flight to a replica that is SIGSTOPped (channel
// encryption, sticky session) is answered by the other replica. Found by the chaos harness
// (#20): when the sentinel's liveness check gives up on the stopped replica it first sends the
// caller a SecureClose for the channel (the SDK re-sends the call over a new channel, to the
// other replica) and then nacks the first send ROUTE_CONNECTOR_CLOSED; the re-send had the
// same envelope id, so that nack failed the call although its re-send was being answered,
// and the caller's retry ran it a second time. The re-send now has an id of its own.
func TestSIGSTOPReplicaCallReSent(t *testing.T) {
	bin := goBinary(t, "github.com/fame-go/fame/examples/math/math-agent")
	f := newFabric(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay"})
	env := map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL": "channel"}
	procs := map[string]*agentProc{"stop1": startMathAgent(t, f, bin, "stop1", env), "stop2": startMathAgent(t, f, bin, "stop2", env)}

	c := f.nodeConfig()
	c.SecurityProfile, c.EncryptionLevel = "overlay", "channel"
	c.CallTimeout = 60 * time.Second
	n := f.connect(c)
	pinned := whoami(t, n)
	other := map[string]string{"stop1": "stop2", "stop2": "stop1"}[pinned]
	stopped := procs[pinned]
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopped.cmd.Process.Signal(syscall.SIGCONT) })

	// Sent to the stopped replica (the session is pinned there), held until the sentinel's
	// liveness check gives up on it.
	var who string
	err := n.Call(context.Background(), mathagent.Address, "whoami", map[string]any{}, &who)
	if err != nil || who != other {
		t.Fatalf("call in flight on the stopped replica %s: answered by %q, err %v; want an answer from %s", pinned, who, err, other)
	}
	// The victim's next calls: the session stays on the live replica.
	for i := range 10 {
		if w := whoami(t, n); w != other {
			t.Fatalf("call %d after the re-pin answered by %s, want %s", i, w, other)
		}
	}
}
