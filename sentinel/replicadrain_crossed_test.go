package sentinel

import (
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestReplicaDrainCrossedRequestNacked: once a drain has moved a session and sent its client
// a SecureClose for a channel, a request still encrypted for that channel (sent before the
// SecureClose reached the client: the two crossed) is refused CHANNEL_CLOSED, as for a lost
// replica, instead of being routed to the draining replica. The client forgot the channel on
// the SecureClose, so the replica's reply could not be read, and the Go SDK re-sends every call
// in flight on a closed channel: forwarded, the request ran twice (the chaos harness's 30-minute
// run, keys alo3-012276 and alo3-023011: a session moved "idle" at the drain's start, its
// request executed on the draining replica and, 4 ms later, its re-send on another one).
// Before the move the channel still reaches the draining replica (only it can read it).
func TestReplicaDrainCrossedRequestNacked(t *testing.T) {
	f := newStickyFixture(t, nil, 2)
	f.r.drains.manual = true
	sid := f.client.sid
	pinned := f.pick(t, sid, nil)
	const cid = "chan-crossed"
	f.r.table.BindChannel(cid, sid, pinned.ident().systemID)
	f.client.take()
	onChannel := func(h *envelope.Header) { h.EncKID = []byte(cid) }
	header := func() *envelope.Header {
		h := &envelope.Header{ID: []byte(envelope.NewID()), SID: []byte(sid), FrameType: []byte(envelope.TypeData)}
		onChannel(h)
		return h
	}

	if _, started := f.r.startReplicaDrain(pinned, "admin"); !started {
		t.Fatal("drain not started")
	}
	if f.r.channelClosed(header()) {
		t.Fatal("the channel was refused before its session moved")
	}
	if got := f.pick(t, sid, onChannel); got != pinned {
		t.Fatalf("before the move, a request on the channel went to %s, not the draining replica", got.ident().systemID)
	}
	// The session is idle: the drain loop moves it and tells the client.
	f.r.drainStep(time.Now())
	if cids := secureCloses(t, f.client); len(cids) != 1 || cids[0] != cid {
		t.Fatalf("SecureCloses to the client: %v, want [%s]", cids, cid)
	}
	if !f.r.channelClosed(header()) {
		t.Fatal("a request on the channel the drain closed is still routed (to the draining replica, which runs it while the client re-sends it)")
	}
	// The drain ends as before.
	now := time.Now()
	f.r.drainStep(now)
	f.r.drainStep(now.Add(replicaDrainLinger))
	if st, ok := f.r.replicaDrainStatus(pinned); !ok || st.State != envelope.DrainStateDrained || st.Result != "idle" {
		t.Fatalf("status after the linger: %+v", st)
	}
	if !f.r.channelClosed(header()) {
		t.Fatal("the channel is no longer refused after the drain ended")
	}
}
