package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// linkBus is a bus of its own on member i's embedded server, with its own
// id and metrics, so that a test can enable links and subscribe freely.
func linkBus(t *testing.T, i int, id string) (*NATSBus, *Metrics) {
	t.Helper()
	cfg := shared.members[i].Config
	cfg.SentinelID = id
	cfg.DataListen = "127.0.0.1:0"
	nc, err := Connect(cfg, shared.members[i].Embedded, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	bus, err := NewBus(nc, cfg, StoreOptions{Logger: testLogger(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bus.Close()
		nc.Close()
	})
	return bus, m
}

func enableLinks(t *testing.T, b *NATSBus) {
	t.Helper()
	tc, err := TLSConfig(shared.pki.good)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnableLinks(tc); err != nil {
		t.Fatal(err)
	}
}

// seqSink collects numbered envelopes ("n<i>") and reports gaps and reorders.
type seqSink struct {
	mu   sync.Mutex
	got  []int
	from map[string]int
}

func (s *seqSink) fn(from string, env []byte) {
	n, err := strconv.Atoi(string(env[1:]))
	if env[0] != 'n' || err != nil {
		return // probes
	}
	s.mu.Lock()
	s.got = append(s.got, n)
	if s.from == nil {
		s.from = map[string]int{}
	}
	s.from[from]++
	s.mu.Unlock()
}

func (s *seqSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// check fails unless exactly lo..hi-1 arrived, in order.
func (s *seqSink) check(t *testing.T, lo, hi int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != hi-lo {
		t.Fatalf("received %d envelopes, sent %d", len(s.got), hi-lo)
	}
	for i, n := range s.got {
		if n != lo+i {
			t.Fatalf("envelope %d arrived in position %d (after %v)", n, i, s.got[max(0, i-3):i])
		}
	}
}

func outTo(a *NATSBus, peer string) *outLink {
	l := a.linksOf()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out[peer]
}

// ups is how many times a's link to peer came up.
func ups(a *NATSBus, peer string) int64 {
	if o := outTo(a, peer); o != nil {
		return o.ups.Load()
	}
	return 0
}

func counter(m *Metrics, result string) float64 {
	return testutil.ToFloat64(m.linkFrames.WithLabelValues(result))
}

// TestLinkSwitchKeepsOrder: a sender publishing a numbered stream over NATS
// switches to a link in the middle of it (the receiver starts advertising
// one), loses the link (the receiver's side closes it) and switches back,
// and comes back to a new link; every envelope arrives exactly once and in
// order across all three switches.
func TestLinkSwitchKeepsOrder(t *testing.T) {
	a, am := linkBus(t, 0, "la")
	b, _ := linkBus(t, 1, "lb")
	enableLinks(t, a)
	var sink seqSink
	probes := make(chan struct{}, 64)
	// A slow receiver (twice as slow as the sender): NATS deliveries fall behind, so that the link's first
	// envelopes would overtake them if the link did not wait for its marker.
	var slow atomic.Bool
	if err := b.Subscribe(func(from string, env []byte) {
		if string(env) == "probe" {
			probes <- struct{}{}
			return
		}
		if slow.Load() {
			time.Sleep(400 * time.Microsecond)
		}
		sink.fn(from, env)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "lb's subscription known on la's server", func() bool {
		if err := a.Publish("lb", []byte("probe")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-probes:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	time.Sleep(50 * time.Millisecond) // late probes

	n := 0
	publishUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for extra := -1; extra != 0; {
			if err := a.Publish("lb", []byte("n"+strconv.Itoa(n))); err != nil {
				t.Fatalf("publish %d: %v", n, err)
			}
			n++
			if extra < 0 && cond() {
				extra = 300 // keep going across the switch
			} else if extra > 0 {
				extra--
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	// 1. NATS, then the link: lb starts advertising one mid-stream.
	slow.Store(true)
	go func() {
		time.Sleep(100 * time.Millisecond)
		tc, _ := TLSConfig(shared.pki.good)
		_ = b.EnableLinks(tc)
	}()
	publishUntil("link up", func() bool { return ups(a, "lb") == 1 })
	eventually(t, 10*time.Second, "first part delivered", func() bool { return sink.count() == n })
	sink.check(t, 0, n)
	slow.Store(false)
	if sent := counter(am, "sent"); sent < 100 {
		t.Fatalf("only %v envelopes went over the link", sent)
	}

	// 2. The receiver drops its side of the link: back to NATS, then a new link.
	bl := b.linksOf()
	bl.mu.Lock()
	for c := range bl.in {
		c.Close()
	}
	bl.mu.Unlock()
	eventually(t, 5*time.Second, "link loss seen", func() bool {
		o := outTo(a, "lb")
		o.mu.RLock()
		defer o.mu.RUnlock()
		return !o.ready
	})
	lo := n
	sink.mu.Lock()
	sink.got = nil
	sink.mu.Unlock()
	publishUntil("link up again", func() bool { return ups(a, "lb") == 2 })
	eventually(t, 10*time.Second, "second part delivered", func() bool { return sink.count() == n-lo })
	sink.check(t, lo, n)
	t.Logf("%d envelopes; over links %v, back to NATS from a lost link's queue %v", n, counter(am, "sent"), counter(am, "to_nats"))
}

// TestLinkRefusesStrangers plays the attackers against a sentinel's link
// port with raw connections: no TLS, a certificate from another CA, the
// stack CA's certificate without the cluster's password, the wrong cluster,
// a hello for another sentinel, an oversize frame after a good hello, and a
// connection that never says hello. Each is refused with its reason on the
// wire (where TLS is up) and counted; none is delivered.
func TestLinkRefusesStrangers(t *testing.T) {
	b, bm := linkBus(t, 1, "lv")
	enableLinks(t, b)
	delivered := make(chan string, 8)
	if err := b.Subscribe(func(from string, env []byte) { delivered <- from }); err != nil {
		t.Fatal(err)
	}
	addr := b.LinkAddr()
	refused := func(reason string) float64 {
		return testutil.ToFloat64(bm.refused.WithLabelValues("data", reason))
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(shared.pki.good.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	dialTLS := func(t *testing.T, f TLSFiles) (*tls.Conn, error) {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		return tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr,
			&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	}
	hello := linkHello{V: linkVersion, Cluster: "shared", From: "evil", To: "lv", User: testUser, Password: testPass, Token: "t1"}
	send := func(t *testing.T, c net.Conn, v any) {
		b, _ := json.Marshal(v)
		if err := writeFrame(c, b); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(t *testing.T, c net.Conn) linkAnswer {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := readFrame(c, maxHelloFrame)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		var a linkAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	closed := func(t *testing.T, c net.Conn) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("connection still open after a refusal")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection still open after a refusal")
		}
	}

	t.Run("plain TCP", func(t *testing.T) {
		before := refused(refuseTLS)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = writeFrame(c, []byte(`{"v":1}`))
		closed(t, c)
		eventually(t, 2*time.Second, "tls refusal counted", func() bool { return refused(refuseTLS) == before+1 })
	})
	t.Run("rogue CA", func(t *testing.T) {
		before := refused(refuseTLS)
		c, err := dialTLS(t, shared.pki.rogue)
		if err == nil {
			// TLS 1.3: the client learns of the refused certificate on its first read.
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil {
			t.Fatal("a certificate from another CA was accepted")
		}
		eventually(t, 2*time.Second, "tls refusal counted", func() bool { return refused(refuseTLS) == before+1 })
	})
	cases := []struct {
		name   string
		edit   func(h *linkHello)
		reason string
	}{
		{"wrong password", func(h *linkHello) { h.Password = "guess" }, refuseCredentials},
		{"no credentials", func(h *linkHello) { h.User, h.Password = "", "" }, refuseCredentials},
		{"wrong cluster", func(h *linkHello) { h.Cluster = "other" }, refuseCluster},
		{"another sentinel", func(h *linkHello) { h.To = "s0" }, refuseTarget},
		{"posing as the receiver", func(h *linkHello) { h.From = "lv" }, refuseHello},
		{"future version", func(h *linkHello) { h.V = 2 }, refuseVersion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := refused(tc.reason)
			c, err := dialTLS(t, shared.pki.good)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h := hello
			tc.edit(&h)
			send(t, c, h)
			if a := answer(t, c); a.OK || a.Reason != tc.reason {
				t.Fatalf("answer %+v, want refusal %q", a, tc.reason)
			}
			closed(t, c)
			if got := refused(tc.reason); got != before+1 {
				t.Fatalf("refusals %q: %v, want %v", tc.reason, got, before+1)
			}
		})
	}
	t.Run("oversize frame", func(t *testing.T) {
		c, err := dialTLS(t, shared.pki.good)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(t, c, hello)
		if a := answer(t, c); !a.OK {
			t.Fatalf("good hello refused: %+v", a)
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], maxLinkFrame+1)
		if _, err := c.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		// The receiver first waits for the switch marker (none comes: switchWait).
		_ = c.SetReadDeadline(time.Now().Add(switchWait + 5*time.Second))
		b, err := readFrame(c, maxHelloFrame)
		if err != nil {
			t.Fatalf("no refusal: %v", err)
		}
		var a linkAnswer
		_ = json.Unmarshal(b, &a)
		if a.Reason != refuseFrame {
			t.Fatalf("answer %+v, want %q", a, refuseFrame)
		}
		closed(t, c)
		if v := testutil.ToFloat64(bm.links.WithLabelValues("no_marker")); v < 1 {
			t.Fatalf("delivery without a marker not counted")
		}
	})
	t.Run("silent", func(t *testing.T) {
		before := refused(refuseTLS)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(linkHelloTimeout + 5*time.Second))
		if _, err := io.ReadAll(c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("a connection that never says hello was kept %v", time.Since(start))
			}
		}
		eventually(t, 2*time.Second, "silent connection counted", func() bool { return refused(refuseTLS) == before+1 })
	})
	select {
	case from := <-delivered:
		t.Fatal(fmt.Sprintf("an envelope from %q was delivered", from))
	default:
	}
}
