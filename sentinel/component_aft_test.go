package sentinel

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fame-go/fame/balancer"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security/aft"
)

// Stickiness decisions on AFTs, with fake peers: the sticky router and the security layer are
// built as New builds them, around one route table and a recording refuser.

type aftFixture struct {
	r      *stickyRouter
	sec    *secFixture
	client *fakePeer
	reps   []*keyedPeer
}

func newAFTFixture(t *testing.T) *aftFixture {
	t.Helper()
	env := map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_STICKINESS_LEVEL": "strict"}
	sec := newSecFixture(t, env)
	opts, err := LoadOptions("", config.Getenv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := balancer.New(string(opts.LoadBalancing))
	if err != nil {
		t.Fatal(err)
	}
	r, err := newStickyRouter(stickyDeps{opts: opts, log: discardLog, metrics: sec.metrics, lb: lb, routes: sec.routes,
		sec: sec.l, sign: sec.l, refuse: sec.refuse, sid: envelope.SecureDigest("/s")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	f := &aftFixture{r: r, sec: sec, client: newFakePeer("/s", "client")}
	sec.routes.attach(f.client)
	for i := 0; i < 2; i++ {
		p := newKeyedPeer(t, fmt.Sprintf("r%d", i))
		sec.attach(t, p)
		sec.routes.bind(p, mustAddr(t, "math@*.fame.fabric"))
		f.reps = append(f.reps, p)
	}
	return f
}

// route sends one request of the client's session through the pool and returns the replica.
func (f *aftFixture) route(t *testing.T) *keyedPeer {
	t.Helper()
	p, members := f.sec.routes.lookupPool([]byte("math"), []byte("fame.fabric"))
	h := &envelope.Header{ID: []byte(envelope.NewID()), SID: []byte(f.client.sid), FrameType: []byte(envelope.TypeData)}
	got := f.r.pick(f.client, p, members, h)
	for _, r := range f.reps {
		if peer(r) == got {
			return r
		}
	}
	t.Fatalf("picked %v", got)
	return nil
}

// reply is an envelope from a replica with an AFT in meta.set.aft.
func aftReply(t *testing.T, envSID string, signer *keyedPeer, replicaSID, clientSID string) *envelope.Header {
	t.Helper()
	tok, err := aft.Sign(signer.signer.Key, signer.signer.Kid, replicaSID, clientSID, "node", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &envelope.Header{ID: []byte(envelope.NewID()), SID: []byte(envSID), FrameType: []byte(envelope.TypeData),
		Meta: []byte(`{"set":{"aft":"` + tok + `"}}`)}
}

func TestAFTDecisions(t *testing.T) {
	f := newAFTFixture(t)
	home := f.route(t)
	other := f.reps[0]
	if other == home {
		other = f.reps[1]
	}
	unrouted := envelope.SecureDigest("/s/nobody")
	cases := []struct {
		name  string
		from  *keyedPeer
		h     *envelope.Header
		want  []refusal
		quiet string // refusal counted without a nack
	}{
		{"the session's replica confirms its pin", home, aftReply(t, home.sid, home, home.sid, f.client.sid), nil, ""},
		{"another replica claims the session", other, aftReply(t, other.sid, other, other.sid, f.client.sid), []refusal{
			{kind: "security", peer: other.systemID, reason: refusalAFTForeignSession},
			{kind: "sys", peer: other.systemID, reason: codeAFTForeignSession}}, ""},
		{"AFT on another node's sid", other, aftReply(t, home.sid, other, other.sid, f.client.sid), []refusal{
			{kind: "security", peer: other.systemID, reason: refusalAFTForeignSID},
			{kind: "sys", peer: other.systemID, reason: codeAFTForeignSID}}, ""},
		{"AFT signed with another node's key", other, aftReply(t, other.sid, home, other.sid, f.client.sid), []refusal{
			{kind: "security", peer: other.systemID, reason: refusalAFTForeignKid},
			{kind: "sys", peer: other.systemID, reason: codeAFTForeignKid}}, ""},
		{"AFT for a session never routed", other, aftReply(t, other.sid, other, other.sid, unrouted), nil, refusalAFTUnroutedSession},
	}
	for _, tc := range cases {
		before := counterValue(t, f.sec.metrics.refusals.WithLabelValues(refusalAFTUnroutedSession))
		if !f.r.learn(tc.from, tc.h) {
			t.Errorf("%s: the envelope was stopped; an AFT refusal only refuses the pin", tc.name)
		}
		if got := stripDetail(f.sec.refuse.take()); !slices.Equal(got, tc.want) {
			t.Errorf("%s: refusals %+v, want %+v", tc.name, got, tc.want)
		}
		if tc.quiet != "" {
			if n := counterValue(t, f.sec.metrics.refusals.WithLabelValues(tc.quiet)) - before; n != 1 {
				t.Errorf("%s: %s counted %v times, want 1", tc.name, tc.quiet, n)
			}
		}
		// Whatever was refused, the session stays where it was routed.
		if got := f.route(t); got != home {
			t.Fatalf("%s: session moved from %s to %s", tc.name, home.systemID, got.systemID)
		}
	}
	if _, bound := f.r.table.Lookup(unrouted); bound {
		t.Error("an AFT pre-pinned a session that was never routed")
	}
}
