package cluster

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Peer links: the direct data path between clustered sentinels.
//
// Over NATS an envelope from sentinel A to sentinel B passes through A's
// in-process NATS client, A's server, the route, B's server and B's client:
// seven goroutine hand-offs and three copies per envelope, measured at 47-51
// µs for a round trip on loopback (BenchmarkBusRoundTrip) and most of the
// cost of the cluster row in BENCHMARKS.md. A peer link is one TLS
// connection from A to B that carries only A's envelopes for B: A's writer
// goroutine writes them in batches, B's reader hands each to the router.
//
// Everything else stays on NATS: heartbeats (which also advertise each
// sentinel's data address), the KV buckets, key announcements, rate
// batches; and envelopes themselves whenever there is no link (before the
// first one is up, after one is lost, to a sentinel that advertises none).
//
// # Locked like the routes
//
// A link is mutual TLS 1.3 with the cluster's certificates (TLSConfig: both
// ends chain to the stack CA, the dialer checks the acceptor's name), then a
// hello frame from the dialer with the cluster's name, both sentinel ids and
// the cluster's user and password, compared in constant time. The acceptor
// answers {"ok":true} or {"ok":false,"reason":...} and closes: a refusal has
// its reason on the wire, a log line and fame_cluster_refused_total{link=
// "data"}. A certificate alone is not enough (the stack CA also issues node
// certificates), exactly as for the routes.
//
// # Order across the switch
//
// NATS delivers one publisher's messages to a subject in order, and so does
// a link; an envelope must not overtake one sent before it on the other
// path. When a link is up the dialer publishes a switch marker over NATS
// (a header, no body) under the link's write lock, so no NATS publish to that
// peer can come after it, and puts the same token in its hello. The acceptor
// delivers nothing from the link until the marker has come through NATS
// (everything published before it has then been delivered), or switchWait
// has passed (counted, logged). Going back to NATS after a link is lost, the
// envelopes still queued for the link are published over NATS in order; what
// the lost connection had written but the peer had not read is lost, as a
// route's would be, and FAME's own acknowledgements and re-sends cover it.
//
// # Bounds
//
// A link's queue holds at most linkQueueFrames envelopes and linkQueueBytes
// bytes; a full queue refuses (Publish's error, the sentinel nacks the
// sender OVERLOADED) instead of growing. A peer that takes no bytes for
// linkWriteTimeout loses its link. An accepted connection must finish its
// TLS handshake and hello within linkHelloTimeout, at most maxHandshakes may
// be at it at once, and a frame above maxLinkFrame ends the connection.

// Wire constants of a peer link.
const (
	linkVersion = 1
	// maxLinkFrame bounds one frame: an envelope (256 KiB at most) and its
	// target line, with room to spare.
	maxLinkFrame = 1 << 20
	// maxHelloFrame bounds the hello and its answer.
	maxHelloFrame = 4 << 10
)

// Bounds and timings of peer links (variables so that tests may shorten them).
var (
	linkQueueFrames  = 8192
	linkQueueBytes   = 64 << 20
	linkWriteTimeout = 5 * time.Second
	linkHelloTimeout = 3 * time.Second
	switchWait       = 2 * time.Second
	redialMin        = 100 * time.Millisecond
	redialMax        = 5 * time.Second
	maxHandshakes    = 64
)

// NATS headers the bus uses for the links.
const (
	// hdrData, on a heartbeat: the host:port the sender accepts links on.
	hdrData = "Fame-Data"
	// hdrSwitch, on an empty message to a peer's subject: the token of the
	// link that carries the sender's envelopes from now on.
	hdrSwitch = "Fame-Link-Switch"
)

// Refusal reasons of an accepted link (the wire's reason, the metric's label).
const (
	refuseTLS         = "tls"
	refuseHello       = "bad_hello"
	refuseVersion     = "version"
	refuseCluster     = "wrong_cluster"
	refuseTarget      = "wrong_sentinel"
	refuseCredentials = "bad_credentials"
	refuseBusy        = "busy"
	refuseFrame       = "frame_too_large"
	refuseClosing     = "closing"
)

// ErrLinkFull: the link to a peer holds as much as it may; the envelope was
// not taken.
var ErrLinkFull = errors.New("cluster: link to peer sentinel full")

type linkHello struct {
	V        int    `json:"v"`
	Cluster  string `json:"cluster"`
	From     string `json:"from"`
	To       string `json:"to"`
	User     string `json:"user"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

type linkAnswer struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// links is a sentinel's peer links: the listener for its peers' links and
// one outbound link per peer that advertises an address.
type links struct {
	cfg     Config
	tls     *tls.Config
	log     *slog.Logger
	m       *Metrics
	ln      net.Listener
	addr    string // advertised in heartbeats
	viaNATS func(to string, env []byte) error
	marker  func(to, token string) error

	deliver atomic.Pointer[func(from string, env []byte)]
	hs      chan struct{} // handshake slots

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the following fields.
	mu      sync.Mutex
	out     map[string]*outLink
	in      map[net.Conn]struct{}
	markers map[string]string        // peer -> last switch token seen over NATS
	waiting map[string]chan struct{} // peer -> closed when its next marker comes
	closed  bool
}

// listenLinks starts accepting links on cfg.DataListen. viaNATS publishes an
// envelope over NATS; marker publishes a switch marker over NATS. Both must
// keep per-peer order with each other (one NATS connection).
func listenLinks(cfg Config, tc *tls.Config, log *slog.Logger, m *Metrics,
	viaNATS func(string, []byte) error, marker func(string, string) error) (*links, error) {
	ln, err := net.Listen("tcp", cfg.DataListen)
	if err != nil {
		return nil, fmt.Errorf("cluster: data listen %s: %w", cfg.DataListen, err)
	}
	addr, err := advertised(cfg, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	l := &links{cfg: cfg, tls: tc, m: m, ln: ln, addr: addr, viaNATS: viaNATS, marker: marker,
		log:     log.With("component", "cluster-link"),
		hs:      make(chan struct{}, maxHandshakes),
		out:     map[string]*outLink{},
		in:      map[net.Conn]struct{}{},
		markers: map[string]string{},
		waiting: map[string]chan struct{}{},
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.accept()
	l.log.Info("accepting peer links", "listen", ln.Addr().String(), "advertise", addr)
	return l, nil
}

// advertised is the address peers dial: DataAdvertise (a host alone takes
// the bound port), else the bound address when its host is a specific one.
func advertised(cfg Config, bound net.Addr) (string, error) {
	_, port, _ := net.SplitHostPort(bound.String())
	if a := cfg.DataAdvertise; a != "" {
		if _, _, err := net.SplitHostPort(a); err == nil {
			return a, nil
		}
		return net.JoinHostPort(a, port), nil
	}
	host, _, _ := net.SplitHostPort(cfg.DataListen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", fmt.Errorf("%w: data_listen %q has no specific host: set data_advertise to the name peers dial", ErrConfig, cfg.DataListen)
	}
	return net.JoinHostPort(host, port), nil
}

// Addr is the address this sentinel advertises for its links.
func (l *links) Addr() string { return l.addr }

func (l *links) setDeliver(fn func(from string, env []byte)) { l.deliver.Store(&fn) }

// publish sends env to peer to over its link when one is up, else over
// NATS. It takes env: the caller must not touch it again.
func (l *links) publish(to string, env []byte) error {
	l.mu.Lock()
	o := l.out[to]
	l.mu.Unlock()
	if o == nil {
		return l.viaNATS(to, env)
	}
	return o.publish(env)
}

// advertise records a peer's advertised data address (from its heartbeat):
// a link to it is started, or restarted when the address changed.
func (l *links) advertise(peer, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil || len(addr) > 255 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if o := l.out[peer]; o != nil {
		if o.addr == addr {
			return
		}
		o.stop()
	}
	o := &outLink{l: l, peer: peer, addr: addr, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	l.out[peer] = o
	l.wg.Add(1)
	go o.run()
}

// drop ends the link to a peer that went down. Never blocks.
func (l *links) drop(peer string) {
	l.mu.Lock()
	o := l.out[peer]
	delete(l.out, peer)
	l.mu.Unlock()
	if o != nil {
		o.stop()
	}
}

// sawMarker records a switch marker that came over NATS from peer.
func (l *links) sawMarker(peer, token string) {
	l.mu.Lock()
	l.markers[peer] = token
	if ch := l.waiting[peer]; ch != nil {
		close(ch)
		delete(l.waiting, peer)
	}
	l.mu.Unlock()
}

// awaitMarker waits until peer's marker token has come over NATS, up to
// switchWait. It reports whether it came.
func (l *links) awaitMarker(peer, token string) bool {
	t := time.NewTimer(switchWait)
	defer t.Stop()
	for {
		l.mu.Lock()
		if l.markers[peer] == token {
			l.mu.Unlock()
			return true
		}
		ch := l.waiting[peer]
		if ch == nil {
			ch = make(chan struct{})
			l.waiting[peer] = ch
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-l.ctx.Done():
			return false
		}
	}
}

// close stops accepting, ends every link and waits for their goroutines.
func (l *links) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	outs := make([]*outLink, 0, len(l.out))
	for _, o := range l.out {
		outs = append(outs, o)
	}
	clear(l.out)
	for c := range l.in {
		c.Close()
	}
	l.mu.Unlock()
	l.cancel()
	l.ln.Close()
	for _, o := range outs {
		o.stop()
	}
	l.wg.Wait()
}

// accept serves the listener until close.
func (l *links) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			l.log.Warn("peer link accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case l.hs <- struct{}{}:
		default:
			// Too many connections still in their handshake: an unauthenticated
			// flood must not take goroutines and memory without bound.
			l.refuse(c, "", refuseBusy, "too many links in their handshake", false)
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			<-l.hs
			c.Close()
			return
		}
		l.in[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(c)
	}
}

// refuse counts, logs and (when the TLS session is up, wire) refuses an
// accepted connection, then closes it.
func (l *links) refuse(c net.Conn, from, reason, detail string, answer bool) {
	l.m.refusal("data", reason)
	l.log.Warn("peer link refused", "reason", reason, "detail", detail, "remote", c.RemoteAddr().String(), "peer_sentinel", from)
	if answer {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		b, _ := json.Marshal(linkAnswer{Reason: reason, Detail: detail})
		_ = writeFrame(c, b)
	}
	c.Close()
}

// serve runs one accepted link: handshake, hello, then frames until the
// connection ends.
func (l *links) serve(raw net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.in, raw)
		l.mu.Unlock()
		raw.Close()
	}()
	hello, tc, ok := l.handshake(raw)
	<-l.hs
	if !ok {
		return
	}
	l.m.link("accepted")
	l.log.Info("peer link accepted", "peer_sentinel", hello.From, "remote", raw.RemoteAddr().String())
	if !l.awaitMarker(hello.From, hello.Token) {
		l.m.link("no_marker")
		l.log.Warn("peer link: switch marker not seen over NATS; delivering anyway (an envelope sent over NATS just before may arrive after the link's first ones)",
			"peer_sentinel", hello.From, "waited", switchWait)
	}
	br := bufio.NewReaderSize(tc, 64<<10)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if l.ctx.Err() == nil {
				l.m.link("lost_in")
				l.log.Info("peer link ended", "peer_sentinel", hello.From, "err", err)
			}
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > maxLinkFrame {
			l.refuse(tc, hello.From, refuseFrame, "frame of "+strconv.FormatUint(uint64(n), 10)+" bytes", true)
			return
		}
		// A fresh slice per envelope, as NATS gives: the router may keep it.
		env := make([]byte, n)
		if _, err := io.ReadFull(br, env); err != nil {
			l.m.link("lost_in")
			l.log.Info("peer link ended mid-frame", "peer_sentinel", hello.From, "err", err)
			return
		}
		l.m.forward("received")
		l.m.frame("received")
		if fn := l.deliver.Load(); fn != nil {
			(*fn)(hello.From, env)
		}
	}
}

// handshake runs the TLS handshake and checks the hello, all within
// linkHelloTimeout. It answers the hello either way.
func (l *links) handshake(raw net.Conn) (linkHello, *tls.Conn, bool) {
	var h linkHello
	deadline := time.Now().Add(linkHelloTimeout)
	_ = raw.SetDeadline(deadline)
	tc := tls.Server(raw, l.tls)
	ctx, cancel := context.WithDeadline(l.ctx, deadline)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.refuse(raw, "", refuseTLS, err.Error(), false) // the TLS alert is the wire's reason
		return h, nil, false
	}
	b, err := readFrame(tc, maxHelloFrame)
	if err != nil {
		l.refuse(tc, "", refuseHello, "reading hello: "+err.Error(), true)
		return h, nil, false
	}
	h, reason, detail := checkHello(b, l.cfg)
	if reason != "" {
		from := h.From
		if !validID(from) {
			from = ""
		}
		l.refuse(tc, from, reason, detail, true)
		return h, nil, false
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		l.refuse(tc, h.From, refuseClosing, "sentinel is closing", true)
		return h, nil, false
	}
	ok, _ := json.Marshal(linkAnswer{OK: true})
	if err := writeFrame(tc, ok); err != nil {
		return h, nil, false
	}
	_ = raw.SetDeadline(time.Time{})
	return h, tc, true
}

// checkHello decodes and checks a hello for the sentinel of cfg: the refusal
// reason and its detail, or "" when the dialer may send.
func checkHello(b []byte, cfg Config) (linkHello, string, string) {
	var h linkHello
	if err := json.Unmarshal(b, &h); err != nil {
		return linkHello{}, refuseHello, "hello is not JSON"
	}
	switch {
	case h.V != linkVersion:
		return h, refuseVersion, "link version " + strconv.Itoa(h.V) + ", want " + strconv.Itoa(linkVersion)
	case h.Cluster != cfg.Name:
		return h, refuseCluster, "hello for cluster " + strconv.Quote(h.Cluster)
	case !validID(h.From) || h.From == cfg.SentinelID || h.Token == "" || len(h.Token) > 64:
		return h, refuseHello, "bad sender id or token"
	case h.To != cfg.SentinelID:
		return h, refuseTarget, "hello for sentinel " + strconv.Quote(h.To)
	case !credentialsMatch(h.User, h.Password, cfg.Auth):
		return h, refuseCredentials, "cluster user or password does not match"
	}
	return h, "", ""
}

// credentialsMatch compares in constant time (both fields, always).
func credentialsMatch(user, password string, a Auth) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(a.User))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(a.Password))
	return u&p == 1 && a.Password != ""
}

func writeFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || int64(n) > int64(max) {
		return nil, fmt.Errorf("frame of %d bytes (at most %d)", n, max)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// outLink is the link this sentinel dials to one peer and writes its
// envelopes for that peer on.
type outLink struct {
	l    *links
	peer string
	addr string
	wake chan struct{} // the writer's: something was queued
	quit chan struct{} // closed by stop
	once sync.Once

	// mu guards the following fields. Publishers hold it for reading while
	// they choose a path and publish; the switch to the link and the switch
	// back hold it for writing, so that nothing crosses a switch.
	mu    sync.RWMutex
	ready bool

	ups atomic.Int64 // how many times the link came up (tests, logs)

	// qmu guards the queue.
	qmu    sync.Mutex
	q      [][]byte
	qbytes int

	// cmu guards conn, the connection of the session in progress (nil between sessions).
	cmu  sync.Mutex
	conn net.Conn
}

// stop ends the link: a write blocked on a frozen peer ends at once, not at its deadline.
func (o *outLink) stop() {
	o.once.Do(func() {
		close(o.quit)
		o.cmu.Lock()
		if o.conn != nil {
			o.conn.Close()
		}
		o.cmu.Unlock()
	})
}

// setConn records the session's connection; false when the link was stopped meanwhile.
func (o *outLink) setConn(c net.Conn) bool {
	o.cmu.Lock()
	defer o.cmu.Unlock()
	if o.stopped() {
		return false
	}
	o.conn = c
	return true
}

// publish queues env on the link when it is up, else publishes it over NATS.
func (o *outLink) publish(env []byte) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if !o.ready {
		return o.l.viaNATS(o.peer, env)
	}
	o.qmu.Lock()
	if len(o.q) >= linkQueueFrames || o.qbytes+len(env) > linkQueueBytes {
		o.qmu.Unlock()
		o.l.m.frame("full")
		return fmt.Errorf("%w: %s (%d envelopes queued)", ErrLinkFull, o.peer, linkQueueFrames)
	}
	first := len(o.q) == 0
	o.q = append(o.q, env)
	o.qbytes += len(env)
	o.qmu.Unlock()
	if first {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// run dials the peer and writes on the link until stop, redialling with
// backoff while the peer is there.
func (o *outLink) run() {
	defer o.l.wg.Done()
	backoff := redialMin
	for {
		select {
		case <-o.quit:
			return
		case <-o.l.ctx.Done():
			return
		default:
		}
		start := time.Now()
		err := o.session()
		if err != nil && !o.stopped() {
			o.l.log.Info("peer link down", "peer_sentinel", o.peer, "addr", o.addr, "err", err, "retry_in", backoff)
		}
		if time.Since(start) > 10*redialMax {
			backoff = redialMin // it had been up for a while: this is a new failure
		}
		select {
		case <-o.quit:
			return
		case <-o.l.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, redialMax)
	}
}

func (o *outLink) stopped() bool {
	select {
	case <-o.quit:
		return true
	default:
		return o.l.ctx.Err() != nil
	}
}

// session dials, says hello, switches publishing to the link and writes
// until the link fails or is stopped; then it switches back to NATS.
func (o *outLink) session() error {
	tc, token, err := o.dial()
	if err != nil {
		return err
	}
	defer tc.Close()
	if !o.setConn(tc) {
		return nil
	}
	defer o.setConn(nil)
	// The switch: no NATS publish to the peer can come after the marker.
	o.mu.Lock()
	if err := o.l.marker(o.peer, token); err != nil {
		o.mu.Unlock()
		return fmt.Errorf("switch marker: %w", err)
	}
	o.ready = true
	o.mu.Unlock()
	o.ups.Add(1)
	o.l.m.link("up")
	o.l.log.Info("peer link up", "peer_sentinel", o.peer, "addr", o.addr)

	// The peer never writes after its answer except to refuse; reading shows
	// that, and a closed connection, at once.
	ended := make(chan error, 1)
	go func() {
		b, err := readFrame(tc, maxHelloFrame)
		if err == nil {
			var a linkAnswer
			_ = json.Unmarshal(b, &a)
			err = fmt.Errorf("peer refused: %s: %s", a.Reason, a.Detail)
		}
		ended <- err
	}()
	err = o.write(tc, ended)
	tc.Close()
	o.back()
	return err
}

// back switches publishing back to NATS and republishes, in order, what the
// link still held.
func (o *outLink) back() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ready = false
	o.qmu.Lock()
	rest := o.q
	o.q, o.qbytes = nil, 0
	o.qmu.Unlock()
	o.l.m.link("lost_out")
	for _, env := range rest {
		if err := o.l.viaNATS(o.peer, env); err != nil {
			o.l.m.frame("lost")
			continue
		}
		o.l.m.frame("to_nats")
	}
	if len(rest) > 0 {
		o.l.log.Info("peer link lost; its queue went over NATS", "peer_sentinel", o.peer, "envelopes", len(rest))
	}
}

// dial connects, runs TLS (checking the peer's name) and the hello.
func (o *outLink) dial() (*tls.Conn, string, error) {
	ctx, cancel := context.WithTimeout(o.l.ctx, linkHelloTimeout)
	defer cancel()
	go func() {
		select {
		case <-o.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: o.l.tls}
	c, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, "", fmt.Errorf("dial %s: %w", o.addr, err)
	}
	tc := c.(*tls.Conn)
	if dl, ok := ctx.Deadline(); ok {
		_ = tc.SetDeadline(dl)
	}
	token := newToken()
	a := o.l.cfg.Auth
	hb, _ := json.Marshal(linkHello{V: linkVersion, Cluster: o.l.cfg.Name, From: o.l.cfg.SentinelID, To: o.peer,
		User: a.User, Password: a.Password, Token: token})
	if err := writeFrame(tc, hb); err != nil {
		tc.Close()
		return nil, "", fmt.Errorf("hello: %w", err)
	}
	b, err := readFrame(tc, maxHelloFrame)
	if err != nil {
		tc.Close()
		return nil, "", fmt.Errorf("hello answer: %w", err)
	}
	var ans linkAnswer
	if err := json.Unmarshal(b, &ans); err != nil || !ans.OK {
		tc.Close()
		return nil, "", fmt.Errorf("refused by peer: %s: %s", ans.Reason, ans.Detail)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, token, nil
}

// write is the link's writer: it takes what is queued, in batches, and
// writes each batch with one flush. It returns when the link fails (the
// peer closed, a write took longer than linkWriteTimeout) or is stopped.
func (o *outLink) write(tc *tls.Conn, ended <-chan error) error {
	bw := bufio.NewWriterSize(tc, 64<<10)
	var batch [][]byte
	var hdr [4]byte
	for {
		o.qmu.Lock()
		batch, o.q = o.q, batch[:0]
		o.qbytes = 0
		o.qmu.Unlock()
		if len(batch) == 0 {
			select {
			case <-o.wake:
				continue
			case err := <-ended:
				return err
			case <-o.quit:
				return nil
			case <-o.l.ctx.Done():
				return nil
			}
		}
		_ = tc.SetWriteDeadline(time.Now().Add(linkWriteTimeout))
		for i, env := range batch {
			binary.BigEndian.PutUint32(hdr[:], uint32(len(env)))
			_, _ = bw.Write(hdr[:])
			if _, err := bw.Write(env); err != nil {
				o.requeue(batch[i+1:])
				return fmt.Errorf("write: %w", err)
			}
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		o.l.m.frames("sent", len(batch))
		clear(batch)
	}
}

// requeue puts back, in front, what a failed batch did not reach, so that
// back republishes it over NATS.
func (o *outLink) requeue(rest [][]byte) {
	if len(rest) == 0 {
		return
	}
	o.qmu.Lock()
	o.q = append(append([][]byte(nil), rest...), o.q...)
	o.qmu.Unlock()
}

var tokenSeq atomic.Uint64

// newToken is a switch token: unique per link of this process, and across
// restarts (the start time).
func newToken() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36) + "." + strconv.FormatUint(tokenSeq.Add(1), 36)
}

// natsSwitchMsg is the switch marker message to a peer's subject.
func natsSwitchMsg(subject, reply, token string) *nats.Msg {
	return &nats.Msg{Subject: subject, Reply: reply, Header: nats.Header{hdrSwitch: []string{token}}}
}
