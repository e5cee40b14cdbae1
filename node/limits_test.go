package node

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// gateOps serves "wait", which blocks until release is closed, and "tick", which emits one
// item and then blocks until release is closed.
func gateOps(release <-chan struct{}, started chan<- struct{}) Ops {
	return Ops{
		"wait": Unary(func(ctx context.Context, p json.RawMessage) (any, error) {
			select {
			case started <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return "done", nil
		}),
		"tick": Streaming(func(ctx context.Context, p json.RawMessage, emit func(any) error) error {
			if err := emit(1); err != nil {
				return err
			}
			select {
			case started <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}),
	}
}

func TestHandlerOverloadNack(t *testing.T) {
	f := newFakeSentinel(t)
	acfg := testConfig(f, "fame.fabric")
	acfg.MaxHandlers, acfg.HandlerQueue = 1, 1
	reg := prometheus.NewRegistry()
	acfg.Registerer = reg
	agent := connect(t, acfg)
	release, started := make(chan struct{}), make(chan struct{}, 8)
	if err := agent.Serve(context.Background(), "gate@fame.fabric", gateOps(release, started)); err != nil {
		t.Fatal(err)
	}
	client := connect(t, testConfig(f))
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 { // one runs, one waits in the queue
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- client.Call(context.Background(), "gate@fame.fabric", "wait", nil, nil)
		}()
	}
	<-started
	waitFor(t, "the second request queued", func() bool { return agent.handlers.queued() == 1 })
	err := client.Call(context.Background(), "gate@fame.fabric", "wait", nil, nil)
	var ne *NackError
	if !errors.As(err, &ne) || ne.Code != envelope.CodeOverloaded {
		t.Fatalf("third call: %v, want nack %s", err, envelope.CodeOverloaded)
	}
	if got := agent.Refusals()[RefusedOverloaded]; got != 1 {
		t.Fatalf("overloaded refusals %d, want 1", got)
	}
	if got := gathered(t, reg, "fame_node_refusals_total", RefusedOverloaded); got != 1 {
		t.Fatalf("fame_node_refusals_total{reason=overloaded} = %v, want 1", got)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("admitted call: %v", err)
		}
	}
	for range 10 {
		if err := client.Call(context.Background(), "gate@fame.fabric", "wait", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "no handler counted", func() bool {
		agent.handlers.mu.Lock()
		defer agent.handlers.mu.Unlock()
		return agent.handlers.active == 0 && len(agent.handlers.queue) == 0
	})
}

func TestPendingCapFailsAtOnce(t *testing.T) {
	f := newFakeSentinel(t)
	agent := connect(t, testConfig(f, "fame.fabric"))
	release, started := make(chan struct{}), make(chan struct{}, 8)
	if err := agent.Serve(context.Background(), "gate@fame.fabric", gateOps(release, started)); err != nil {
		t.Fatal(err)
	}
	ccfg := testConfig(f)
	ccfg.MaxPending = 2
	client := connect(t, ccfg)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client.Call(context.Background(), "gate@fame.fabric", "wait", nil, nil); err != nil {
				t.Errorf("call within the cap: %v", err)
			}
		}()
	}
	<-started
	<-started
	err := client.Call(context.Background(), "gate@fame.fabric", "wait", nil, nil)
	if !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("call past the cap: %v, want ErrTooManyPending", err)
	}
	if got := client.Refusals()[RefusedPendingFull]; got != 1 {
		t.Fatalf("pending_full refusals %d, want 1", got)
	}
	close(release)
	wg.Wait()
	if err := client.Call(context.Background(), "gate@fame.fabric", "wait", nil, nil); err != nil {
		t.Fatalf("after the others finished: %v", err)
	}
}

// TestStreamEndsOnSentinelNack: the sentinel nacks an open stream (its replica died); the
// stream ends with that nack at once instead of waiting for its timeout.
func TestStreamEndsOnSentinelNack(t *testing.T) {
	f := newFakeSentinel(t)
	agent := connect(t, testConfig(f, "fame.fabric"))
	release, started := make(chan struct{}), make(chan struct{}, 8)
	defer close(release)
	if err := agent.Serve(context.Background(), "gate@fame.fabric", gateOps(release, started)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var req *envelope.Envelope
	f.onForward = func(e *envelope.Envelope, to string) {
		if to == agent.SystemID() && e.FrameType() == envelope.TypeData {
			mu.Lock()
			req = e
			mu.Unlock()
		}
	}
	client := connect(t, testConfig(f))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := client.Stream(ctx, "gate@fame.fabric", "tick", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(ctx); err != nil {
		t.Fatal(err)
	}
	<-started
	mu.Lock()
	r := req
	mu.Unlock()
	nack := &envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: envelope.CodeRouteConnectorClosed, Reason: "replica left", RefID: r.ID}}
	f.mu.Lock()
	c := f.children[client.SystemID()]
	f.mu.Unlock()
	out, _ := envelope.New(nack)
	out.SID, out.TraceID, out.To, out.CorrID, out.FlowID = envelope.SecureDigest("/"+f.id), r.TraceID, r.ReplyTo, r.CorrID, c.flow
	f.write(context.Background(), c, out, envelope.FlowReset)
	start := time.Now()
	_, err = st.Next(ctx)
	var ne *NackError
	if !errors.As(err, &ne) || ne.Code != envelope.CodeRouteConnectorClosed {
		t.Fatalf("Next after the nack: %v", err)
	}
	t.Logf("stream ended %s after the nack", time.Since(start))
	if n := client.pend.size(); n != 0 {
		t.Fatalf("%d pending entries left", n)
	}
}

func TestHeartbeatAckOnlyFromSentinel(t *testing.T) {
	f := overlaySentinel(t)
	client := connect(t, func() Config { c := testConfig(f); overlay("")(&c); return c }())
	// A heartbeat ack routed to the client from elsewhere carries a "to" (and here a new
	// routing epoch that would trigger a re-bind).
	f.sendTo(client.SystemID(), "__sys__@"+client.AssignedPath(), &envelope.NodeHeartbeatAck{Ack: envelope.Ack{OK: true}, RoutingEpoch: "EPOCH-FORGED"})
	waitFor(t, "refusal counted", func() bool { return client.Refusals()[RefusedHeartbeatAckForeign] == 1 })
	client.mu.Lock()
	ep := *client.cur.epoch.Load()
	client.mu.Unlock()
	if ep == "EPOCH-FORGED" {
		t.Fatal("forged routing epoch accepted")
	}
}

// attacker is a third node known to the fake sentinel's key directory.
type attacker struct {
	path   string
	signer *security.Signer
}

func newAttacker(t *testing.T, f *fakeSentinel, id string) *attacker {
	priv, err := security.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{path: "/" + f.id + "/" + id, signer: &security.Signer{Key: priv, Kid: envelope.NewID()}}
	if err := f.overlay.keys.Add(security.SigningJWK(priv.Public().(ed25519.PublicKey), a.signer.Kid), a.path); err != nil {
		t.Fatal(err)
	}
	return a
}

// announce sends victim (a child of f) a KeyAnnounce signed by the attacker, as if routed to
// it from the attacker's connection.
func (a *attacker) announce(t *testing.T, f *fakeSentinel, victim *Node, ka *envelope.KeyAnnounce) {
	f.mu.Lock()
	c := f.children[victim.SystemID()]
	f.mu.Unlock()
	env, err := envelope.New(ka)
	if err != nil {
		t.Fatal(err)
	}
	env.SID, env.TraceID, env.To, env.FlowID = envelope.SecureDigest(a.path), envelope.NewID(), "__sys__@"+victim.AssignedPath(), envelope.NewID()
	if err := a.signer.Sign(env); err != nil {
		t.Fatal(err)
	}
	f.write(context.Background(), c, env, -1)
}

// agentSigningKey returns the JWK the agent attached with.
func agentSigningKey(t *testing.T, f *fakeSentinel, agent *Node) security.JWK {
	for _, e := range framesOf(f, agent.SystemID(), envelope.TypeNodeAttach) {
		fr, _ := e.DecodeFrame()
		for _, raw := range fr.(*envelope.NodeAttach).Keys {
			if j, err := security.ParseJWK(raw); err == nil && j.Use == "sig" {
				return j
			}
		}
	}
	t.Fatal("agent attached without a signing key")
	return security.JWK{}
}

func TestKeyAnnouncePoisonRefused(t *testing.T) {
	f := overlaySentinel(t)
	agent, client := agentAndClient(t, f, overlay(""))
	if _, err := add(t, client, 1, 2); err != nil { // the client now knows the agent's key
		t.Fatal(err)
	}
	victimKey := agentSigningKey(t, f, agent)
	evil := newAttacker(t, f, "EVIL000000000001")
	evilPub := evil.signer.Key.Public().(ed25519.PublicKey)
	other, _ := security.NewNodeKey()
	forged := func(kid string) json.RawMessage {
		b, _ := json.Marshal(security.SigningJWK(other.Public().(ed25519.PublicKey), kid))
		return b
	}
	agentPath := "/" + f.id + "/" + agent.SystemID()

	// 1. A key for the replica's path.
	evil.announce(t, f, client, &envelope.KeyAnnounce{PhysicalPath: agentPath, Keys: []json.RawMessage{forged(envelope.NewID())}, Created: envelope.Now()})
	waitFor(t, "foreign path refused", func() bool { return client.Refusals()[RefusedKeyAnnounceForeignPath] == 1 })
	// 2. The replica's kid under the attacker's own path.
	evil.announce(t, f, client, &envelope.KeyAnnounce{PhysicalPath: evil.path, Keys: []json.RawMessage{forged(victimKey.Kid)}, Created: envelope.Now()})
	waitFor(t, "kid re-assignment refused", func() bool { return client.Refusals()[RefusedKeyAnnounceKidTaken] == 1 })
	// 3. Its own key under its own path is fine.
	own, _ := json.Marshal(security.SigningJWK(evilPub, evil.signer.Kid))
	evil.announce(t, f, client, &envelope.KeyAnnounce{PhysicalPath: evil.path, Keys: []json.RawMessage{own}, Created: envelope.Now()})

	if k, ok := client.sec.keys.Get(victimKey.Kid); !ok || k.PhysicalPath != agentPath {
		t.Fatalf("victim kid now %+v", k)
	}
	for i := range 10 {
		if _, err := add(t, client, i, 1); err != nil {
			t.Fatalf("call %d after the poisoning attempts: %v", i, err)
		}
	}
}

// TestReplayOutsideWindowRefused: the same request bytes, re-delivered after the replay
// window, and after the guard forgot the id (cache size), are refused and counted.
// In a synctest bubble over in-memory pipes (see newBubbleSentinel): the wait past the
// replay window takes no wall time, and "not answered" is checked once every goroutine is idle.
func TestReplayOutsideWindowRefused(t *testing.T) { synctest.Test(t, testReplayOutsideWindowRefused) }

func testReplayOutsideWindowRefused(t *testing.T) {
	f := overlayBubbleSentinel(t)
	var mu sync.Mutex
	var captured []*envelope.Envelope
	var agentID string
	f.onForward = func(e *envelope.Envelope, to string) {
		if to == agentID && e.FrameType() == envelope.TypeData {
			mu.Lock()
			cp := *e
			captured = append(captured, &cp)
			mu.Unlock()
		}
	}
	agent, client := agentAndClient(t, f, func(c *Config) {
		overlay("")(c)
		c.ReplayWindow = 300 * time.Millisecond
		c.ReplayCacheSize = 4
	})
	agentID = agent.SystemID()
	replay := func(e *envelope.Envelope) {
		f.mu.Lock()
		c := f.children[agentID]
		f.mu.Unlock()
		f.write(context.Background(), c, e, -1)
	}
	// In the bubble the clock stands still while goroutines run, and ts has millisecond
	// resolution: each request goes 1 ms after the previous one, as it would in real time,
	// so a new request's ts is after the floor the evicted ids leave.
	add := func(t *testing.T, n *Node, x, y int) (int, error) {
		time.Sleep(time.Millisecond)
		return add(t, n, x, y)
	}
	if _, err := add(t, client, 1, 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := captured[0]
	mu.Unlock()
	answered := func() int { return len(framesOf(f, agentID, envelope.TypeData)) }

	// After the guard had to forget the id (4 other requests, cache size 4).
	for i := range 4 {
		if _, err := add(t, client, i, 1); err != nil {
			t.Fatal(err)
		}
	}
	before := answered()
	replay(first)
	waitFor(t, "evicted replay refused", func() bool { return agent.Refusals()[RefusedStale] == 1 })

	// After the window.
	if _, err := add(t, client, 5, 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	last := captured[len(captured)-1]
	mu.Unlock()
	before = answered()
	time.Sleep(400 * time.Millisecond) // fake time: past the 300 ms window at once
	replay(last)
	waitFor(t, "replay after the window refused", func() bool { return agent.Refusals()[RefusedStale] == 2 })
	synctest.Wait() // everything the replay caused has happened
	if answered() != before {
		t.Fatal("a replayed request was answered")
	}
}

// TestIdleChannelsExpire: with a short idle timeout both ends drop the channel, the opener
// closes it with a SecureClose, and the next call opens a new one.
func TestIdleChannelsExpire(t *testing.T) {
	f := overlaySentinel(t)
	agent, client := agentAndClient(t, f, func(c *Config) {
		overlay("channel")(c)
		c.ChannelIdleTimeout = 100 * time.Millisecond
	})
	if _, err := add(t, client, 1, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "channels expired on both ends", func() bool {
		return client.sec.channels.table.Len() == 0 && agent.sec.channels.table.Len() == 0
	})
	waitFor(t, "SecureClose sent by the opener", func() bool {
		return len(framesOf(f, client.SystemID(), envelope.TypeSecureClose)) == 1
	})
	if _, err := add(t, client, 3, 4); err != nil {
		t.Fatal(err)
	}
	if n := len(framesOf(f, client.SystemID(), envelope.TypeSecureOpen)); n != 2 {
		t.Fatalf("client sent %d SecureOpens, want 2 (a new channel after expiry)", n)
	}
}

// TestAcceptedChannelsExpire: a replica drops a channel its client left idle (the client
// never closed it, as after a crash); the client's next call on it gets a SecureClose for the
// unknown cid and goes through on a new channel.
func TestAcceptedChannelsExpire(t *testing.T) {
	f := overlaySentinel(t)
	acfg, ccfg := testConfig(f, "fame.fabric"), testConfig(f)
	overlay("channel")(&acfg)
	overlay("channel")(&ccfg)
	acfg.ChannelIdleTimeout = 100 * time.Millisecond
	agent := connect(t, acfg)
	if err := agent.Serve(context.Background(), "math@fame.fabric", testOps("agent-1", nil)); err != nil {
		t.Fatal(err)
	}
	client := connect(t, ccfg)
	if _, err := add(t, client, 1, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica dropped the idle channel", func() bool { return agent.SecureChannels() == 0 })
	if client.SecureChannels() != 1 {
		t.Fatalf("client holds %d channels, want its 1", client.SecureChannels())
	}
	if sum, err := add(t, client, 3, 4); err != nil || sum != 7 {
		t.Fatalf("call on the expired channel: %d, %v", sum, err)
	}
	if n := len(framesOf(f, client.SystemID(), envelope.TypeSecureOpen)); n != 2 {
		t.Fatalf("client sent %d SecureOpens, want 2", n)
	}
}

// TestCloseSendsSecureClose: a client closing tells the far end of each of its channels.
func TestCloseSendsSecureClose(t *testing.T) {
	f := overlaySentinel(t)
	agent, client := agentAndClient(t, f, overlay("channel"))
	if _, err := add(t, client, 1, 2); err != nil {
		t.Fatal(err)
	}
	if agent.sec.channels.table.Len() != 1 {
		t.Fatalf("agent holds %d channels, want 1", agent.sec.channels.table.Len())
	}
	id := client.SystemID()
	client.Close()
	waitFor(t, "one SecureClose from the closing client", func() bool { return len(framesOf(f, id, envelope.TypeSecureClose)) == 1 })
	waitFor(t, "the agent dropped the channel", func() bool { return agent.sec.channels.table.Len() == 0 })
}

// TestLimitDefaults: the bounds' defaults (their FAME_* variables are read by package config,
// config.TestNodeLimitsFromEnv).
func TestLimitDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	if d.ChannelIdleTimeout != 10*time.Minute || d.MaxHandlers != 1024 || d.HandlerQueue != 1024 || d.MaxPending != 1<<16 ||
		d.ReplayWindow != 10*time.Minute || d.ReplayFutureSkew != time.Minute || d.ReplayCacheSize != 1<<16 {
		t.Fatalf("defaults %+v", d)
	}
}

// TestStrictOverlayKeyAnnounceNeedsCertificate: under strict-overlay a key is stored only with
// a certificate chaining to the trust bundle, for the path it certifies.
// In a synctest bubble over in-memory pipes (see newBubbleSentinel): the checks after the last
// announce run once it has been handled.
func TestStrictOverlayKeyAnnounceNeedsCertificate(t *testing.T) {
	synctest.Test(t, testStrictOverlayKeyAnnounceNeedsCertificate)
}

func testStrictOverlayKeyAnnounceNeedsCertificate(t *testing.T) {
	auth := newTestAuthority(t)
	f := overlayBubbleSentinel(t)
	cfg := testConfig(f)
	cfg.SecurityProfile, cfg.KeyRequestTimeout = "strict-overlay", 100*time.Millisecond
	if _, err := Connect(context.Background(), cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("strict-overlay without FAME_CA_CERTS: %v, want ErrConfig", err)
	}
	cfg.Trust = security.NewTrustBundle([]*x509.Certificate{auth.Root})
	client := connect(t, cfg)

	certify := func(a *attacker) []string {
		var x5c []string
		for _, c := range auth.issueNode(t, a.signer.Key.Public().(ed25519.PublicKey), a.path) {
			x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
		}
		j := security.SigningJWK(a.signer.Key.Public().(ed25519.PublicKey), a.signer.Kid)
		j.X5C = x5c
		if err := f.overlay.keys.Add(j, a.path); err != nil { // the sentinel's directory, as on attach
			t.Fatal(err)
		}
		return x5c
	}
	jwk := func(a *attacker, x5c []string) json.RawMessage {
		j := security.SigningJWK(a.signer.Key.Public().(ed25519.PublicKey), a.signer.Kid)
		j.X5C = x5c
		b, _ := json.Marshal(j)
		return b
	}

	// An uncertified node: the sentinel's answer for its kid is refused, so its announce is
	// never verified and never stored.
	plain := newAttacker(t, f, "PLAIN00000000001")
	plain.announce(t, f, client, &envelope.KeyAnnounce{PhysicalPath: plain.path, Keys: []json.RawMessage{jwk(plain, nil)}})
	waitFor(t, "uncertified key refused", func() bool { return client.Refusals()[RefusedKeyAnnounceNoCert] >= 1 })
	if _, ok := client.sec.keys.Get(plain.signer.Kid); ok {
		t.Fatal("uncertified key stored")
	}

	good := newAttacker(t, f, "CERT000000000001")
	x5c := certify(good)
	base := client.Refusals()[RefusedKeyAnnounceNoCert]
	// Its own key without the certificate: refused.
	good.announce(t, f, client, &envelope.KeyAnnounce{PhysicalPath: good.path, Keys: []json.RawMessage{jwk(good, nil)}})
	waitFor(t, "key without x5c refused", func() bool { return client.Refusals()[RefusedKeyAnnounceNoCert] == base+1 })
	// Another path, even certified: refused.
	good.announce(t, f, client, &envelope.KeyAnnounce{PhysicalPath: plain.path, Keys: []json.RawMessage{jwk(good, x5c)}})
	waitFor(t, "foreign path refused", func() bool { return client.Refusals()[RefusedKeyAnnounceForeignPath] == 1 })
	// Its own certified key: stored with its identity.
	good.announce(t, f, client, &envelope.KeyAnnounce{PhysicalPath: good.path, Keys: []json.RawMessage{jwk(good, x5c)}})
	synctest.Wait() // the announce has been handled
	k, ok := client.sec.keys.Get(good.signer.Kid)
	if !ok || k.Identity == nil || k.PhysicalPath != good.path {
		t.Fatalf("certified key: %+v", k)
	}
	if got := client.Refusals()[RefusedKeyAnnounceNoCert]; got != base+1 {
		t.Fatalf("no_cert refusals %d, want %d", got, base+1)
	}
}

// gathered reads one counter sample with the given reason label from reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// queued is the number of requests waiting for a handler.
func (p *handlerPool) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}
