package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// Helpers of the cluster fault tests (cluster_faults_test.go): at-least-once callers that
// count every nack they receive and the longest wait between two answers, and a raw client
// that opens channels by hand.

// nackCounter counts the negative DeliveryAcks a node receives, by code (an Inbound hook:
// at-least-once calls re-send on a retryable nack, so the caller never sees them).
type nackCounter struct {
	mu    sync.Mutex
	codes map[string]int
}

func (n *nackCounter) hook(e *envelope.Envelope) error {
	if e.FrameType() != envelope.TypeDeliveryAck {
		return nil
	}
	f, err := e.DecodeFrame()
	if err != nil {
		return nil
	}
	if ack, ok := f.(*envelope.DeliveryAck); ok && !ack.OK {
		n.mu.Lock()
		if n.codes == nil {
			n.codes = map[string]int{}
		}
		n.codes[ack.Code]++
		n.mu.Unlock()
	}
	return nil
}

func (n *nackCounter) total() (int, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := 0
	var parts []string
	for c, k := range n.codes {
		t += k
		parts = append(parts, fmt.Sprintf("%s=%d", c, k))
	}
	sort.Strings(parts)
	return t, strings.Join(parts, " ")
}

// aloClient is one at-least-once caller and what its calls did.
type aloClient struct {
	n      *node.Node
	home   int
	before string // replica that answered before the fault

	mu      sync.Mutex
	last    time.Time     // last answer
	maxGap  time.Duration // longest wait between two answers (or from the start of a call)
	gapFrom time.Time     // when the longest gap ended
}

func (c *aloClient) answered(start, now time.Time) {
	c.mu.Lock()
	from := c.last
	if from.IsZero() || start.After(from) {
		from = start
	}
	if g := now.Sub(from); g > c.maxGap {
		c.maxGap, c.gapFrom = g, now
	}
	c.last = now
	c.mu.Unlock()
}

func (c *aloClient) gap() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxGap
}

// aloLoad drives "record" calls from at-least-once clients, goroutines per client, until
// finish. Every call ends: with a reply, or with an error counted as a failure.
type aloLoad struct {
	t       *testing.T
	ex      *execLog
	nacks   *nackCounter
	clients []*aloClient
	ok      atomic.Int64
	failed  atomic.Int64
	seq     atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
	errMu   sync.Mutex
	errs    []string
	slowest atomic.Int64 // longest call, ns
}

// newALOClients connects an at-least-once client to sentinel i of cf for each home, counting
// nacks into nc, and asks each which replica serves its session.
func newALOClients(t *testing.T, cf *clusterFixture, nc *nackCounter, rotate bool, homes ...int) []*aloClient {
	t.Helper()
	var out []*aloClient
	for _, home := range homes {
		cfg := cf.clientConfig(home, rotate)
		cfg.Delivery = node.AtLeastOnce
		cfg.CallTimeout = 60 * time.Second
		cfg.Inbound = append(cfg.Inbound, nc.hook)
		c := &aloClient{n: cf.procs[home].connect(cfg), home: home}
		c.before = whoami(t, c.n)
		out = append(out, c)
	}
	return out
}

func startALOLoad(t *testing.T, ex *execLog, nc *nackCounter, clients []*aloClient, perClient int) *aloLoad {
	l := &aloLoad{t: t, ex: ex, nacks: nc, clients: clients, stop: make(chan struct{})}
	for ci, c := range clients {
		for g := 0; g < perClient; g++ {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				for {
					select {
					case <-l.stop:
						return
					default:
					}
					key := fmt.Sprintf("c%d-%d", ci, l.seq.Add(1))
					var who string
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					start := time.Now()
					err := c.n.Call(ctx, mathagent.Address, "record", map[string]any{"key": key, "sleep_ms": 5}, &who)
					cancel()
					now := time.Now()
					if d := int64(now.Sub(start)); d > l.slowest.Load() {
						l.slowest.Store(d)
					}
					if err != nil {
						l.failed.Add(1)
						ex.mu.Lock()
						ran := fmt.Sprintf("executed %d time(s) by %q", ex.counts[key], ex.by[key])
						ex.mu.Unlock()
						l.errMu.Lock()
						l.errs = append(l.errs, fmt.Sprintf("%s (client %d): %s: %v", key, ci, ran, err))
						l.errMu.Unlock()
						continue
					}
					c.answered(start, now)
					l.ok.Add(1)
				}
			}()
		}
	}
	return l
}

// finish stops the callers and waits for every call in flight to end (reply or error);
// a call that never ends fails the test instead of hanging it.
func (l *aloLoad) finish() {
	close(l.stop)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		l.t.Fatal("calls still in flight 90 s after the load stopped: a call hangs")
	}
}

func (l *aloLoad) firstErrs() []string {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.errs[:min(len(l.errs), 5)]
}

// rawWhoami calls whoami on math@fame.fabric from a raw client (enc: the channel id to
// mark the request encrypted for, or ""), and returns the replica that answered or the
// nack code. SecureCloses read meanwhile are counted in closes.
func rawWhoami(p *rawPeer, kid string, closes map[string]int) (who, nack string, err error) {
	req := p.sendFrame(&envelope.Data{Payload: json.RawMessage(`{"jsonrpc":"2.0","id":"1","method":"whoami","params":{}}`)}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo, e.RType = mathagent.Address, "__rpc__w@"+p.path, envelope.RTypeReply
		if kid != "" {
			sec, _ := json.Marshal(envelope.Sec{Enc: &envelope.Encryption{Alg: "chacha20-poly1305-channel", Kid: kid, Val: "00"}})
			e.Sec = sec
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		e, err := p.read(time.Until(deadline))
		if err != nil {
			return "", "", err
		}
		switch e.FrameType() {
		case envelope.TypeSecureClose:
			if f, err := e.DecodeFrame(); err == nil && closes != nil {
				closes[f.(*envelope.SecureClose).CID]++
			}
		case envelope.TypeDeliveryAck:
			f, err := e.DecodeFrame()
			if err != nil {
				continue
			}
			if ack := f.(*envelope.DeliveryAck); !ack.OK && (ack.RefID == req.ID || e.CorrID == req.CorrID) {
				return "", ack.Code, nil
			}
		case envelope.TypeData:
			if e.CorrID != req.CorrID {
				continue
			}
			f, err := e.DecodeFrame()
			if err != nil {
				return "", "", err
			}
			var r struct {
				Result string `json:"result"`
			}
			if err := json.Unmarshal(f.(*envelope.Data).Payload, &r); err != nil {
				return "", "", fmt.Errorf("reply %s: %w", f.(*envelope.Data).Payload, err)
			}
			return r.Result, "", nil
		}
	}
	return "", "", errRawTimeout
}

// rawOpen sends a SecureOpen for cid from p to math@fame.fabric (the replica ignores it under
// the open profile; what matters is where the sentinels bind the channel).
func rawOpen(p *rawPeer, cid string) {
	p.sendFrame(&envelope.SecureOpen{CID: cid, EphPub: "AAAA", Alg: "CHACHA20P1305"}, func(e *envelope.Envelope) {
		e.To, e.ReplyTo = mathagent.Address, "__rpc__o@"+p.path
	})
}

// awaitSecureClose reads p until a SecureClose for cid arrives (true) or d passes.
func awaitSecureClose(p *rawPeer, cid string, d time.Duration, closes map[string]int) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		e, err := p.read(left)
		if err != nil {
			return false
		}
		if e.FrameType() == envelope.TypeSecureClose {
			f, err := e.DecodeFrame()
			if err != nil {
				continue
			}
			got := f.(*envelope.SecureClose).CID
			closes[got]++
			if got == cid {
				return true
			}
		}
	}
}

// natsConn connects to sentinel i's embedded NATS client port as a cluster member does
// (mutual TLS with the stack CA, the cluster's credentials).
func (cf *clusterFixture) natsConn(i int) *nats.Conn {
	cf.t.Helper()
	pem, err := os.ReadFile(cf.pki.ca)
	if err != nil {
		cf.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(cf.pki.cert, cf.pki.key)
	if err != nil {
		cf.t.Fatal(err)
	}
	tc := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	nc, err := nats.Connect(fmt.Sprintf("tls://127.0.0.1:%d", cf.clientPort[i]), nats.Secure(tc),
		nats.UserInfo(clusterUser, clusterPass), nats.Timeout(5*time.Second), nats.NoReconnect())
	if err != nil {
		cf.t.Fatalf("NATS connection to %s: %v", cf.ids[i], err)
	}
	return nc
}

// leadKV makes sentinel i the Raft leader of the cluster's KV streams (bindings and replica
// directory), by leader step-downs naming it preferred, so that stopping or killing it
// stalls every survivor's KV writes until a new leader is elected.
func (cf *clusterFixture) leadKV(i int, via int) {
	cf.t.Helper()
	nc := cf.natsConn(via)
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		cf.t.Fatal(err)
	}
	for _, stream := range []string{"KV_fame_e2e_bindings", "KV_fame_e2e_replicas"} {
		waitUntil(cf.t, 60*time.Second, cf.ids[i]+" leading "+stream, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return false
			}
			info, err := s.Info(ctx)
			if err != nil || info.Cluster == nil {
				return false
			}
			if info.Cluster.Leader == cf.ids[i] {
				return true
			}
			req := `{"placement":{"preferred":"` + cf.ids[i] + `"}}`
			_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req), 5*time.Second)
			time.Sleep(time.Second)
			return false
		})
	}
}

// ensureSessionOn adds at-least-once clients of sentinel home until one session is on replica
// (at most 24 clients in all), counting each in on. Sessions are placed by HRW over random
// sids, so 8 clients all on the other of two replicas happens (1 in 128); a check that needs
// some on replica must not fail on that, while a real bias still shows as none of 24.
func ensureSessionOn(t *testing.T, cf *clusterFixture, nc *nackCounter, clients []*aloClient, on map[string]int, replica string, home int) []*aloClient {
	t.Helper()
	for on[replica] == 0 && len(clients) < 24 {
		c := newALOClients(t, cf, nc, false, home)[0]
		clients = append(clients, c)
		on[c.before]++
	}
	return clients
}

// aloClientsOn makes at-least-once clients, one per entry of homes (the index of its
// sentinel), adding clients of s0 until one session is on replica (ensureSessionOn); it
// returns them with the count of sessions per replica, and fails the test when none of 24
// landed on replica.
func aloClientsOn(t *testing.T, cf *clusterFixture, nc *nackCounter, replica string, homes ...int) ([]*aloClient, map[string]int) {
	t.Helper()
	clients := newALOClients(t, cf, nc, false, homes...)
	on := map[string]int{}
	for _, c := range clients {
		on[c.before]++
	}
	clients = ensureSessionOn(t, cf, nc, clients, on, replica, 0)
	if on[replica] == 0 {
		t.Fatalf("sessions per replica %v: none of %d callers on %s", on, len(clients), replica)
	}
	return clients, on
}

// startALOReplicas starts the math replicas r1 on s1 and r2 on s2, at-least-once, each
// re-attaching round the cluster from its own sentinel, and waits until every sentinel
// lists both.
func (cf *clusterFixture) startALOReplicas(ex *execLog) {
	cf.procs[1].startReplica("r1", "*.fame.fabric", ex, func(c *node.Config) { c.AttachURL, c.Delivery = cf.rotating(1), node.AtLeastOnce })
	cf.procs[2].startReplica("r2", "*.fame.fabric", ex, func(c *node.Config) { c.AttachURL, c.Delivery = cf.rotating(2), node.AtLeastOnce })
	cf.waitReplicas(2)
}

// sigterm sends SIGTERM to sentinel i and waits (60 s at most) for it to exit, which it
// must do with status 0 once drained; it returns how long the exit took.
func (cf *clusterFixture) sigterm(i int) time.Duration {
	cf.t.Helper()
	p := cf.procs[i]
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		cf.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		cf.t.Fatalf("s%d did not exit within 60 s of SIGTERM", i)
	}
	took := time.Since(at)
	if p.err != nil {
		cf.t.Errorf("s%d exit: %v, want 0 after its drain", i, p.err)
	}
	return took
}
