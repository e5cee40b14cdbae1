package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// replayOps: add counts its runs; big answers more than a small reply cache keeps; count
// streams 1..n; slow waits for release.
func replayOps(execs *atomic.Int64, release <-chan struct{}) Ops {
	return Ops{
		"add": Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			execs.Add(1)
			var a xy
			if err := json.Unmarshal(p, &a); err != nil {
				return nil, err
			}
			return a.X + a.Y, nil
		}),
		"big": Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			execs.Add(1)
			return strings.Repeat("x", 4096), nil
		}),
		"count": Streaming(func(ctx context.Context, p json.RawMessage, emit func(any) error) error {
			execs.Add(1)
			for i := 1; i <= 3; i++ {
				if err := emit(i); err != nil {
					return err
				}
			}
			return nil
		}),
		"slow": Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			execs.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return "done", nil
		}),
	}
}

// replayPair connects an at-most-once agent (cfg changed by agentCfg) serving math@fame.fabric
// and an at-least-once client that re-sends quickly.
func replayPair(t *testing.T, f *fakeSentinel, agentCfg, both func(*Config), ops Ops) (agent, client *Node) {
	t.Helper()
	acfg, ccfg := testConfig(f, "fame.fabric"), testConfig(f)
	if both != nil {
		both(&acfg)
		both(&ccfg)
	}
	if agentCfg != nil {
		agentCfg(&acfg)
	}
	ccfg.Delivery = AtLeastOnce
	ccfg.SenderRetry = RetryPolicy{MaxRetries: 8, BaseDelay: 40 * time.Millisecond, MaxDelay: 80 * time.Millisecond, Factor: 2}
	agent = connect(t, acfg)
	if err := agent.Serve(context.Background(), "math@fame.fabric", ops); err != nil {
		t.Fatal(err)
	}
	client = connect(t, ccfg)
	return agent, client
}

// loseFirstAnswer makes the fake sentinel lose the agent's first delivery ack and every
// reply of the first execution (the agent's Data sent before the client's re-send arrived):
// the at-most-once agent does not re-send them, so only the client's re-send of the request
// (same envelope id) can bring the reply.
func loseFirstAnswer(f *fakeSentinel, agent, client *Node) {
	var lostAck atomic.Bool
	var requests atomic.Int64
	f.drop = func(e *envelope.Envelope) bool {
		switch e.SID {
		case envelope.SecureDigest(client.AssignedPath()):
			if e.FrameType() == envelope.TypeData {
				requests.Add(1)
			}
		case envelope.SecureDigest(agent.AssignedPath()):
			switch e.FrameType() {
			case envelope.TypeDeliveryAck:
				return lostAck.CompareAndSwap(false, true)
			case envelope.TypeData:
				return requests.Load() < 2
			}
		}
		return false
	}
}

func TestReplyReplayedToResend(t *testing.T) {
	cases := []struct {
		name     string
		secure   func(*Config) // both nodes; the fake sentinel signs and keeps keys
		agentCfg func(*Config)
		call     func(ctx context.Context, c *Node) error
		wantCode string // "" : the call succeeds
		timeout  bool   // the call times out (the cache is off: the old behaviour)
	}{
		{name: "unary", call: func(ctx context.Context, c *Node) error {
			var got int
			if err := c.Call(ctx, "math@fame.fabric", "add", xy{3, 4}, &got); err != nil {
				return err
			}
			if got != 7 {
				return errors.New("wrong sum")
			}
			return nil
		}},
		// Signed: the re-send is caught by the replay guard (same signing key), not the id LRU.
		{name: "unary signed", secure: overlay("plaintext"), call: func(ctx context.Context, c *Node) error {
			var got int
			if err := c.Call(ctx, "math@fame.fabric", "add", xy{3, 4}, &got); err != nil {
				return err
			}
			if got != 7 {
				return errors.New("wrong sum")
			}
			return nil
		}},
		{name: "unary over a secure channel", secure: overlay("channel"), call: func(ctx context.Context, c *Node) error {
			var got int
			if err := c.Call(ctx, "math@fame.fabric", "add", xy{3, 4}, &got); err != nil {
				return err
			}
			if got != 7 {
				return errors.New("wrong sum")
			}
			return nil
		}},
		{name: "stream", call: func(ctx context.Context, c *Node) error {
			st, err := c.Stream(ctx, "math@fame.fabric", "count", map[string]int{})
			if err != nil {
				return err
			}
			defer st.Close()
			var items []string
			for {
				item, err := st.Next(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				items = append(items, string(item))
			}
			if strings.Join(items, ",") != "1,2,3" {
				return errors.New("stream items " + strings.Join(items, ","))
			}
			return nil
		}},
		{name: "too large to keep", agentCfg: func(c *Config) { c.ReplyCacheBytes = 16 << 10 }, wantCode: CodeReplyNotKept,
			call: func(ctx context.Context, c *Node) error {
				return c.Call(ctx, "math@fame.fabric", "big", nil, nil)
			}},
		{name: "cache off", agentCfg: func(c *Config) { c.ReplyCacheSize = -1 }, timeout: true,
			call: func(ctx context.Context, c *Node) error {
				return c.Call(ctx, "math@fame.fabric", "add", xy{1, 1}, nil)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSentinel(t)
			if tc.secure != nil {
				f = overlaySentinel(t)
			}
			var execs atomic.Int64
			reg := prometheus.NewRegistry()
			agentCfg := func(c *Config) {
				c.Registerer = reg
				if tc.agentCfg != nil {
					tc.agentCfg(c)
				}
			}
			agent, client := replayPair(t, f, agentCfg, tc.secure, replayOps(&execs, nil))
			loseFirstAnswer(f, agent, client)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := tc.call(ctx, client)
			switch {
			case tc.timeout:
				if err == nil {
					t.Fatal("call succeeded with the reply cache off: the lost reply came back?")
				}
			case tc.wantCode != "":
				var ne *NackError
				if !errors.As(err, &ne) || ne.Code != tc.wantCode {
					t.Fatalf("call error = %v, want a %s nack", err, tc.wantCode)
				}
				if got := agent.Refusals()[RefusedReplyNotKept]; got != 1 {
					t.Errorf("refusals[%s] = %d, want 1", RefusedReplyNotKept, got)
				}
			default:
				if err != nil {
					t.Fatalf("call after a lost reply: %v", err)
				}
			}
			if n := execs.Load(); n != 1 {
				t.Errorf("handler ran %d times, want exactly 1", n)
			}
			// What the re-send got is counted; the cache's fill is exported.
			resends := map[string]float64{}
			var entries float64
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					switch mf.GetName() {
					case "fame_node_reply_resends_total":
						resends[m.GetLabel()[len(m.GetLabel())-1].GetValue()] += m.GetCounter().GetValue()
					case "fame_node_reply_cache_entries":
						entries = m.GetGauge().GetValue()
					}
				}
			}
			switch {
			case tc.timeout:
				if len(resends) != 0 {
					t.Errorf("cache off, yet re-sends counted: %v", resends)
				}
			case tc.wantCode != "":
				if resends[resendResultNotKept] != 1 {
					t.Errorf("fame_node_reply_resends_total = %v, want not_kept 1", resends)
				}
			default:
				if resends[resendResultReplayed] < 1 || entries < 1 {
					t.Errorf("fame_node_reply_resends_total = %v, entries %v; want replayed >= 1 and an entry kept", resends, entries)
				}
			}
			// The re-sent replies carry the original ids, so a caller that got the originals
			// would drop them as duplicates.
			if tc.wantCode == "" && !tc.timeout {
				ids := map[string]int{}
				for _, e := range f.received(agent.SystemID()) {
					if e.FrameType() == envelope.TypeData {
						ids[e.ID]++
						// A reply that went over a channel goes again over the re-send's channel.
						if enc := encOf(t, e); tc.name == "unary over a secure channel" && (enc == nil || enc.Alg != security.EncAlgChannel) {
							t.Errorf("reply %s not channel-encrypted: sec=%s", e.ID, e.Sec)
						}
					}
				}
				for id, k := range ids {
					if k != 2 {
						t.Errorf("reply %s sent %d times, want 2 (original, then re-sent with its id)", id, k)
					}
				}
			}
		})
	}
}

// A re-send that arrives while the request runs is not run again: it is acknowledged and
// answered when the request completes, at its own replyTo (the caller moved) with its corrId.
func TestResendWhileRunning(t *testing.T) {
	f := newFakeSentinel(t)
	var execs atomic.Int64
	release := make(chan struct{})
	agent, client := replayPair(t, f, nil, nil, replayOps(&execs, release))
	other := connect(t, testConfig(f))
	movedTo := "__rpc__moved@" + other.AssignedPath()
	var lostAck atomic.Bool
	var requests atomic.Int64
	var resentCorr atomic.Value
	f.drop = func(e *envelope.Envelope) bool {
		return e.SID == envelope.SecureDigest(agent.AssignedPath()) && e.FrameType() == envelope.TypeDeliveryAck &&
			lostAck.CompareAndSwap(false, true)
	}
	f.tamper = func(e *envelope.Envelope) {
		if e.SID == envelope.SecureDigest(client.AssignedPath()) && e.FrameType() == envelope.TypeData {
			if requests.Add(1) == 2 {
				e.ReplyTo = movedTo // the second copy says the caller moved
				resentCorr.Store(e.CorrID)
			}
		}
	}
	var mu sync.Mutex
	repliesTo := map[string][]string{} // child id → reply envelope ids
	f.onForward = func(e *envelope.Envelope, to string) {
		if e.SID == envelope.SecureDigest(agent.AssignedPath()) && e.FrameType() == envelope.TypeData {
			mu.Lock()
			repliesTo[to] = append(repliesTo[to], e.ID+" "+e.To)
			mu.Unlock()
		}
	}
	done := make(chan error, 1)
	var got string
	go func() { done <- client.Call(context.Background(), "math@fame.fabric", "slow", nil, &got) }()
	waitFor(t, "the re-send while running", func() bool { return requests.Load() >= 2 })
	close(release)
	if err := <-done; err != nil || got != "done" {
		t.Fatalf("call = %q, %v", got, err)
	}
	if n := execs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want exactly 1", n)
	}
	waitFor(t, "the reply at the moved caller's replyTo", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(repliesTo[other.SystemID()]) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	toClient, toMoved := repliesTo[client.SystemID()], repliesTo[other.SystemID()]
	if len(toClient) != 1 {
		t.Fatalf("replies to the client: %v, want 1", toClient)
	}
	if strings.Fields(toClient[0])[0] != strings.Fields(toMoved[0])[0] || strings.Fields(toMoved[0])[1] != movedTo {
		t.Errorf("reply to the moved caller %q, want the original's id %q at %s", toMoved[0], toClient[0], movedTo)
	}
}

// The cache's bounds: count, bytes, age, one too large, waiters, and only the sender's re-send.
func TestReplyCacheBounds(t *testing.T) {
	req := func(id, replyTo string) *envelope.Envelope {
		return &envelope.Envelope{ID: id, ReplyTo: replyTo, CorrID: "c-" + id}
	}
	run := func(c *replyCache, id string, payload int) {
		e := req(id, "__rpc__a@/s/a")
		c.begin(e, "kid:a")
		r := c.recorder(e)
		r.add("r-"+id, json.RawMessage(strings.Repeat("1", payload)), nil)
		c.finish(id, r)
	}
	clock := time.Unix(1000, 0)
	cases := []struct {
		name      string
		size      int
		bytes     int
		steps     func(c *replyCache)
		id        string
		sender    string
		want      resendAction
		maxKept   int
		wantBytes func(int) bool
	}{
		{name: "kept", size: 8, bytes: 1 << 20, steps: func(c *replyCache) { run(c, "1", 10) }, id: "1", sender: "kid:a", want: resendReplay, maxKept: 1},
		{name: "count bound evicts the oldest", size: 2, bytes: 1 << 20,
			steps: func(c *replyCache) { run(c, "1", 10); run(c, "2", 10); run(c, "3", 10) }, id: "1", sender: "kid:a", want: resendUnknown, maxKept: 2},
		{name: "byte bound evicts the oldest", size: 100, bytes: 32 << 10,
			steps: func(c *replyCache) {
				for i := range 40 {
					run(c, string(rune('A'+i)), 1500)
				}
			}, id: "A", sender: "kid:a", want: resendUnknown, maxKept: 32 << 10 / 1500},
		{name: "too large is remembered without it", size: 8, bytes: 16 << 10, steps: func(c *replyCache) { run(c, "1", 2000) },
			id: "1", sender: "kid:a", want: resendNotKept, maxKept: 1},
		{name: "expired", size: 8, bytes: 1 << 20, steps: func(c *replyCache) { run(c, "1", 10); clock = clock.Add(3 * time.Minute) },
			id: "1", sender: "kid:a", want: resendUnknown, maxKept: 1},
		{name: "another sender's id", size: 8, bytes: 1 << 20, steps: func(c *replyCache) { run(c, "1", 10) }, id: "1", sender: "kid:b", want: resendForeign, maxKept: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock = time.Unix(1000, 0)
			c := newReplyCache(tc.size, tc.bytes, 2*time.Minute)
			c.now = func() time.Time { return clock }
			tc.steps(c)
			if got, _ := c.resent(req(tc.id, "__rpc__a@/s2/a"), tc.sender, nil); got != tc.want {
				t.Errorf("resent = %d, want %d", got, tc.want)
			}
			n, b := c.len()
			if n > tc.maxKept || b > tc.bytes {
				t.Errorf("kept %d entries (%d bytes), bounds %d and %d", n, b, tc.maxKept, tc.bytes)
			}
		})
	}
	t.Run("waiters while running", func(t *testing.T) {
		c := newReplyCache(8, 1<<20, time.Minute)
		e := req("1", "__rpc__a@/s/a")
		c.begin(e, "kid:a")
		for i := range 6 {
			if got, _ := c.resent(req("1", "__rpc__a@/s"+string(rune('0'+i))+"/a"), "kid:a", nil); got != resendRunning {
				t.Fatalf("re-send %d while running = %d", i, got)
			}
		}
		if got, _ := c.resent(req("1", "__rpc__x@/s/x"), "kid:x", nil); got != resendForeign {
			t.Errorf("another sender's re-send while running = %d, want foreign", got)
		}
		r := c.recorder(e)
		r.add("r1", json.RawMessage(`1`), nil)
		_, waiters := c.finish("1", r)
		if len(waiters) != maxResendWaiters || waiters[len(waiters)-1].env.ReplyTo != "__rpc__a@/s5/a" {
			t.Errorf("waiters = %d (last %v), want the latest %d", len(waiters), waiters[len(waiters)-1].env.ReplyTo, maxResendWaiters)
		}
	})
	if newReplyCache(-1, 0, 0) != nil {
		t.Error("a negative size must turn the cache off")
	}
}

// The attacker learned a request's envelope id (and corrId) and re-sends it, signed with its
// own key, with its own replyTo: under the signing profiles a kept reply goes only to the
// request's signer, so the attacker gets the old acknowledgement and no copy of the reply,
// and the handler does not run again.
func TestResendFromAnotherSignerGetsNoReply(t *testing.T) {
	f := overlaySentinel(t)
	var execs atomic.Int64
	agent, client := replayPair(t, f, nil, overlay("plaintext"), replayOps(&execs, nil))
	acfg := testConfig(f)
	overlay("plaintext")(&acfg)
	attacker := connect(t, acfg)
	var mu sync.Mutex
	var request *envelope.Envelope
	toAttacker := map[string]int{} // frame type → count from the agent
	f.onForward = func(e *envelope.Envelope, to string) {
		mu.Lock()
		defer mu.Unlock()
		if e.SID == envelope.SecureDigest(client.AssignedPath()) && e.FrameType() == envelope.TypeData && request == nil {
			cp := *e
			request = &cp
		}
		if e.SID == envelope.SecureDigest(agent.AssignedPath()) && to == attacker.SystemID() {
			toAttacker[e.FrameType()]++
		}
	}
	var got int
	if err := client.Call(context.Background(), "math@fame.fabric", "add", xy{2, 5}, &got); err != nil || got != 7 {
		t.Fatalf("add = %d, %v", got, err)
	}
	mu.Lock()
	orig := request
	mu.Unlock()
	fr, err := orig.DecodeFrame()
	if err != nil {
		t.Fatal(err)
	}
	l, err := attacker.current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(&envelope.Data{Payload: fr.(*envelope.Data).Payload})
	if err != nil {
		t.Fatal(err)
	}
	env.ID, env.SID, env.TraceID, env.To, env.ReplyTo = orig.ID, l.sid, orig.TraceID, orig.To, l.rpcInbox
	env.RType, env.CorrID = envelope.RTypeAck|envelope.RTypeReply, orig.CorrID
	if err := attacker.sendSecured(context.Background(), l, env, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent's ack to the attacker", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return toAttacker[envelope.TypeDeliveryAck] == 1
	})
	// The next call's reply follows any copy the agent would have sent the attacker.
	if err := client.Call(context.Background(), "math@fame.fabric", "add", xy{1, 1}, &got); err != nil || got != 2 {
		t.Fatalf("add = %d, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := toAttacker[envelope.TypeData]; n != 0 {
		t.Errorf("the agent sent the attacker %d replies for another signer's request id", n)
	}
	if n := execs.Load(); n != 2 {
		t.Errorf("handler ran %d times for 2 calls and a foreign re-send, want 2", n)
	}
}
