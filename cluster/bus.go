package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Heartbeat payloads: a sentinel's state as its peers should see it.
const (
	beatUp       = "up"
	beatDraining = "draining"
	beatBye      = "bye" // graceful Close: down at once, no need to wait for missed beats
)

// PeerState is a sentinel's liveness as this sentinel sees it.
type PeerState string

const (
	PeerUp       PeerState = "up"
	PeerDraining PeerState = "draining"
	PeerDown     PeerState = "down"
)

// Bus errors.
var (
	// ErrSelf: publishing to this sentinel's own subject (a loop).
	ErrSelf = errors.New("cluster: publish to self")
	// ErrBadSentinel: a sentinel id that is not a subject token.
	ErrBadSentinel = errors.New("cluster: bad sentinel id")
)

// Bus carries raw envelopes between the sentinels of a cluster and tells
// which sentinels are alive.
//
// Forwarding is one hop: core NATS subject fame.<cluster>.s.<sentinelId>
// per sentinel, no JetStream, no acknowledgement (the FAME layer has its
// own: acks, nacks, at-least-once retries). An envelope received from the
// bus must never be published to the bus again, so a routing disagreement
// cannot loop.
//
// Liveness: every sentinel publishes fame.<cluster>.hb.<id> every Heartbeat
// (up or draining); a peer not heard for MissedBeats heartbeats is down. A
// sentinel that closes says so ("bye") and is down at once. With a route
// probe (the embedded server, SetRouteProbe), a peer whose server's route
// to ours has closed is down as soon as one beat is missed as well: a
// process killed outright closes its sockets, so its routes go at once,
// while a frozen or merely slow one keeps them and still gets the
// MissedBeats verdict.
type Bus interface {
	// Publish hands env to the connection for sentinel to; it does not
	// wait for the peer (nats.go buffers, also while reconnecting).
	Publish(to string, env []byte) error
	// Subscribe delivers envelopes addressed to this sentinel, with the
	// sending sentinel's id, to fn, each sender's in the order it sent them.
	// fn is called from NATS's delivery goroutine and, with peer links, from
	// one reader goroutine per link at once: it must be safe for concurrent
	// use. Once.
	Subscribe(fn func(from string, env []byte)) error
	// State returns a peer's liveness (PeerDown for one never heard).
	State(sentinel string) PeerState
	// Peers returns the ids of the peers that are up or draining, sorted.
	Peers() []string
	// OnPeer registers fn, called on each liveness transition of a peer
	// (from the bus's goroutine; it must not block).
	OnPeer(fn func(sentinel string, s PeerState))
	// SetDraining makes this sentinel's heartbeats say draining.
	SetDraining(bool)
	Close() error
}

// NATSBus is Bus over a NATS connection.
type NATSBus struct {
	nc     *nats.Conn
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	prefix string                // fame.<cluster>.
	self   string                // fame.<cluster>.s.<id>
	links  atomic.Pointer[links] // the direct data path; nil: envelopes over NATS only

	mu       sync.Mutex
	peers    map[string]*peer
	onPeer   []func(string, PeerState)
	draining bool
	probe    func() map[string]bool // sentinel ids whose server has a route to ours; nil: timers only
	sub      *nats.Subscription
	hbSub    *nats.Subscription
	deliver  func(from string, env []byte) // Subscribe's fn

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type peer struct {
	last  time.Time
	state PeerState
	// routed: the last route probe found a route to its server. routeLost:
	// when a probe first found that route gone (zero while routed, and for
	// a peer never seen as a server, such as one on an external NATS).
	routed    bool
	routeLost time.Time
}

// SentinelSubject is the subject envelopes for sentinel id travel on.
func SentinelSubject(cluster, id string) string { return "fame." + cluster + ".s." + id }

// HeartbeatSubject is the subject sentinel id's heartbeats travel on.
func HeartbeatSubject(cluster, id string) string { return "fame." + cluster + ".hb." + id }

// NewBus starts heartbeats and the liveness checker on nc.
func NewBus(nc *nats.Conn, cfg Config, o StoreOptions) (*NATSBus, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &NATSBus{
		nc: nc, cfg: cfg, m: o.Metrics,
		log:    o.Logger.With("component", "cluster-bus", "cluster", cfg.Name, "sentinel", cfg.SentinelID),
		prefix: "fame." + cfg.Name + ".",
		self:   SentinelSubject(cfg.Name, cfg.SentinelID),
		peers:  map[string]*peer{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	b.hbSub, err = nc.Subscribe(b.prefix+"hb.*", b.onBeat)
	if err != nil {
		return nil, fmt.Errorf("cluster: heartbeat subscription: %w", err)
	}
	b.beat(beatUp)
	go b.run()
	return b, nil
}

// Publish implements Bus.
func (b *NATSBus) Publish(to string, env []byte) error {
	if to == b.cfg.SentinelID {
		b.m.forward("refused")
		return ErrSelf
	}
	if !validID(to) {
		b.m.forward("refused")
		return fmt.Errorf("%w: %q", ErrBadSentinel, to)
	}
	var err error
	if l := b.linksOf(); l != nil {
		err = l.publish(to, env)
	} else {
		err = b.viaNATS(to, env)
	}
	if err != nil {
		b.m.forward("error")
		return err
	}
	b.m.forward("sent")
	return nil
}

// viaNATS publishes env for sentinel to over NATS.
func (b *NATSBus) viaNATS(to string, env []byte) error {
	// The reply subject carries the sender: no header to build or parse.
	if err := b.nc.PublishRequest(b.prefix+"s."+to, b.self, env); err != nil {
		return fmt.Errorf("cluster: forward to %s: %w", to, err)
	}
	return nil
}

// linksOf is the bus's peer links (set once, by EnableLinks).
func (b *NATSBus) linksOf() *links { return b.links.Load() }

// EnableLinks starts the direct data path (peer links, peerlink.go) on
// cfg.DataListen with tc, the cluster's mutual TLS: heartbeats advertise its
// address, and envelopes for a peer that advertises one go over a link to it
// once that link is up. Once.
func (b *NATSBus) EnableLinks(tc *tls.Config) error {
	if !b.cfg.DataPath() {
		return fmt.Errorf("%w: no data_listen", ErrConfig)
	}
	if b.links.Load() != nil {
		return errors.New("cluster: links already enabled")
	}
	marker := func(to, token string) error {
		return b.nc.PublishMsg(natsSwitchMsg(b.prefix+"s."+to, b.self, token))
	}
	l, err := listenLinks(b.cfg, tc, b.log, b.m, b.viaNATS, marker)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.deliver != nil {
		l.setDeliver(b.deliver)
	}
	b.links.Store(l)
	b.mu.Unlock()
	b.OnPeer(func(id string, st PeerState) {
		if st == PeerDown {
			l.drop(id)
		}
	})
	b.beat(beatUp) // advertise it now rather than at the next beat
	return nil
}

// LinkAddr is the address this sentinel's peer links are accepted on ("" when off).
func (b *NATSBus) LinkAddr() string {
	if l := b.linksOf(); l != nil {
		return l.Addr()
	}
	return ""
}

// Subscribe implements Bus.
func (b *NATSBus) Subscribe(fn func(from string, env []byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sub != nil {
		return errors.New("cluster: bus already subscribed")
	}
	b.deliver = fn
	if l := b.links.Load(); l != nil {
		l.setDeliver(fn)
	}
	sp := b.prefix + "s."
	sub, err := b.nc.Subscribe(b.self, func(m *nats.Msg) {
		from, ok := strings.CutPrefix(m.Reply, sp)
		if !ok || !validID(from) {
			b.m.forward("refused")
			b.log.Warn("envelope on the cluster bus without a sentinel sender; dropped", "reply", m.Reply)
			return
		}
		if tok := m.Header.Get(hdrSwitch); tok != "" {
			if l := b.links.Load(); l != nil {
				l.sawMarker(from, tok)
			}
			return
		}
		b.m.forward("received")
		fn(from, m.Data)
	})
	if err != nil {
		return fmt.Errorf("cluster: subscribe %s: %w", b.self, err)
	}
	// Envelopes are bursty; let a burst queue rather than be dropped as a
	// slow consumer (nats.go default: 512 Ki messages / 64 MiB).
	_ = sub.SetPendingLimits(-1, 256<<20)
	b.sub = sub
	// The local server has the interest once the flush returns; the other
	// servers learn it over the routes shortly after.
	if err := b.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: subscribe %s: %w", b.self, err)
	}
	return nil
}

func (b *NATSBus) onBeat(m *nats.Msg) {
	id, ok := strings.CutPrefix(m.Subject, b.prefix+"hb.")
	if !ok || id == b.cfg.SentinelID || !validID(id) {
		return
	}
	st := PeerUp
	switch string(m.Data) {
	case beatDraining:
		st = PeerDraining
	case beatBye:
		st = PeerDown
	}
	b.mu.Lock()
	p := b.peers[id]
	if p == nil {
		p = &peer{state: PeerDown}
		b.peers[id] = p
	}
	p.last = time.Now()
	fns := b.transition(id, p, st, "bye")
	l := b.links.Load()
	b.mu.Unlock()
	if addr := m.Header.Get(hdrData); l != nil && addr != "" && st != PeerDown {
		l.advertise(id, addr)
	}
	for _, fn := range fns {
		fn(id, st)
	}
}

// transition sets p's state; it returns the callbacks to run (outside the
// lock) when the state changed. Caller holds b.mu.
// why names the evidence of a down verdict (bye, silent, route_closed).
func (b *NATSBus) transition(id string, p *peer, st PeerState, why string) []func(string, PeerState) {
	if p.state == st {
		return nil
	}
	if st == PeerDown {
		b.log.Info("cluster peer state", "peer", id, "from", p.state, "to", st, "why", why,
			"silent_for", time.Since(p.last).Round(time.Millisecond))
		b.m.down(why)
	} else {
		b.log.Info("cluster peer state", "peer", id, "from", p.state, "to", st)
	}
	b.m.peer(string(st))
	p.state = st
	return b.onPeer
}

func (b *NATSBus) beat(state string) {
	m := &nats.Msg{Subject: HeartbeatSubject(b.cfg.Name, b.cfg.SentinelID), Data: []byte(state)}
	if l := b.linksOf(); l != nil && state != beatBye {
		m.Header = nats.Header{hdrData: []string{l.Addr()}}
	}
	if err := b.nc.PublishMsg(m); err != nil {
		b.log.Debug("heartbeat not sent", "err", err)
	}
}

// SetRouteProbe gives the bus a way to ask which peers' servers have a
// route to this sentinel's server (Embedded.RoutedServers). A peer whose
// route closes is declared down once it has also missed one beat (with a
// quarter of a heartbeat of slack), rather than MissedBeats: on kill -9 the
// kernel closes the dead process's sockets and the route goes at once. The
// missed beat keeps a route that is re-established at once (a duplicate
// route resolved at start, a brief reconnect) from counting. A frozen
// (SIGSTOP) or overloaded peer keeps its TCP connections, so it still gets
// the MissedBeats verdict; so does a machine that vanishes without closing
// its connections (power loss), until TCP or NATS notices.
func (b *NATSBus) SetRouteProbe(fn func() map[string]bool) {
	b.mu.Lock()
	b.probe = fn
	b.mu.Unlock()
}

// checkEvery is how often the liveness checker looks: a fraction of a
// heartbeat, at most 100 ms so a route-closed verdict follows the missed
// beat closely (the check walks a map of a few peers; the probe lists a
// few routes).
func checkEvery(hb time.Duration) time.Duration {
	return max(min(hb/4, 100*time.Millisecond), time.Millisecond)
}

// run sends heartbeats and marks silent peers down.
func (b *NATSBus) run() {
	defer close(b.done)
	hb := time.NewTicker(b.cfg.Heartbeat)
	defer hb.Stop()
	check := time.NewTicker(checkEvery(b.cfg.Heartbeat))
	defer check.Stop()
	deadline := time.Duration(b.cfg.MissedBeats) * b.cfg.Heartbeat
	routeDeadline := b.cfg.Heartbeat + b.cfg.Heartbeat/4
	for {
		select {
		case <-b.stop:
			return
		case <-hb.C:
			b.mu.Lock()
			st := beatUp
			if b.draining {
				st = beatDraining
			}
			b.mu.Unlock()
			b.beat(st)
		case now := <-check.C:
			type down struct {
				id  string
				fns []func(string, PeerState)
			}
			var downs []down
			b.mu.Lock()
			probe := b.probe
			b.mu.Unlock()
			var routed map[string]bool
			if probe != nil {
				routed = probe() // outside b.mu: it takes the server's locks
			}
			b.mu.Lock()
			for id, p := range b.peers {
				if routed != nil {
					switch {
					case routed[id]:
						p.routed, p.routeLost = true, time.Time{}
					case p.routed:
						p.routed, p.routeLost = false, now
					}
				}
				if p.state == PeerDown {
					continue
				}
				// The closed route first: when both hold it is the better
				// explanation (and the one the metric should name).
				switch silent := now.Sub(p.last); {
				case !p.routeLost.IsZero() && silent > routeDeadline:
					downs = append(downs, down{id, b.transition(id, p, PeerDown, "route_closed")})
				case silent > deadline:
					downs = append(downs, down{id, b.transition(id, p, PeerDown, "silent")})
				}
			}
			b.mu.Unlock()
			for _, d := range downs {
				for _, fn := range d.fns {
					fn(d.id, PeerDown)
				}
			}
		}
	}
}

// State implements Bus.
func (b *NATSBus) State(id string) PeerState {
	if id == b.cfg.SentinelID {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.draining {
			return PeerDraining
		}
		return PeerUp
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.peers[id]; p != nil {
		return p.state
	}
	return PeerDown
}

// Peers implements Bus.
func (b *NATSBus) Peers() []string {
	b.mu.Lock()
	out := make([]string, 0, len(b.peers))
	for id, p := range b.peers {
		if p.state != PeerDown {
			out = append(out, id)
		}
	}
	b.mu.Unlock()
	sort.Strings(out)
	return out
}

// OnPeer implements Bus.
func (b *NATSBus) OnPeer(fn func(string, PeerState)) {
	b.mu.Lock()
	b.onPeer = append(b.onPeer[:len(b.onPeer):len(b.onPeer)], fn)
	b.mu.Unlock()
}

// SetDraining implements Bus; the next heartbeat carries it, and one is
// sent now so peers stop choosing this sentinel's replicas at once.
func (b *NATSBus) SetDraining(d bool) {
	b.mu.Lock()
	b.draining = d
	b.mu.Unlock()
	st := beatUp
	if d {
		st = beatDraining
	}
	b.beat(st)
}

// Close implements Bus: stops the heartbeats, says bye, unsubscribes. The
// connection belongs to the caller.
func (b *NATSBus) Close() error {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.beat(beatBye)
		b.mu.Lock()
		subs := []*nats.Subscription{b.sub, b.hbSub}
		b.mu.Unlock()
		for _, s := range subs {
			if s != nil {
				_ = s.Unsubscribe()
			}
		}
		_ = b.nc.Flush()
		if l := b.linksOf(); l != nil {
			l.close()
		}
	})
	return nil
}
