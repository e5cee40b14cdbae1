package welcome

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Target is one sentinel of a cluster the service places nodes on (FAME_WELCOME_TARGETS).
type Target struct {
	SystemID     string // the sentinel's id (its FAME_NODE_ID)
	PhysicalPath string // default "/" + SystemID
	AttachURL    string // the WebSocket URL nodes attach to, ws(s)://host/fame/v1/attach/ws/downstream
}

// CodeNoSentinel is the refusal code (HTTP 503) of a hello when no sentinel of the cluster
// is ready to take the node.
const CodeNoSentinel = "no_sentinel"

// Placement across a cluster. With several targets, each hello is placed on a ready one:
// the service's home sentinel first when it has one (Config.TargetSystemID among the
// targets: a welcome service beside each sentinel keeps its nodes there), then the sentinels
// ranked for the node's system id by rendezvous hashing (so a node comes back to the same
// sentinel while it is ready, and nodes spread evenly), and the first whose
// /readyz answers 200 takes it. A sentinel that is down or draining (its /readyz answers 503
// from the first moment of a drain) is skipped. Readiness is cached for readyTTL, so a burst
// of hellos costs one probe per sentinel, and probed with readyTimeout, so a dead sentinel
// costs a hello at most that.
const (
	readyTTL     = time.Second
	readyTimeout = 500 * time.Millisecond
)

// errNoReadyTarget: every sentinel of the cluster was down or draining.
var errNoReadyTarget = errors.New("welcome: no sentinel of the cluster is ready")

type placer struct {
	targets []Target
	home    string // preferred while ready ("" for none): the service's own sentinel
	client  *http.Client
	now     func() time.Time

	// mu guards the following fields: the last readiness seen per target, and the probe
	// in flight per target, which concurrent hellos wait for instead of each probing (while a
	// sentinel dies, a burst of hellos would otherwise each spend readyTimeout on it).
	mu      sync.Mutex
	ready   map[string]readiness
	probing map[string]*probeCall
}

// probeCall is one /readyz probe in flight; done closes when ok and why are set.
type probeCall struct {
	done chan struct{}
	ok   bool
	why  string
}

type readiness struct {
	ok bool
	at time.Time
}

func newPlacer(targets []Target, home string, client *http.Client, now func() time.Time) *placer {
	if client == nil {
		client = &http.Client{Timeout: readyTimeout}
	}
	return &placer{targets: targets, home: home, client: client, now: now, ready: map[string]readiness{}, probing: map[string]*probeCall{}}
}

// pick returns the ready target that ranks first for sid, or errNoReadyTarget naming what
// was seen of each.
func (p *placer) pick(sid string) (Target, error) {
	var seen []string
	for _, t := range p.rank(sid) {
		ok, why := p.isReady(t)
		if ok {
			return t, nil
		}
		seen = append(seen, t.SystemID+": "+why)
	}
	return Target{}, fmt.Errorf("%w (%s)", errNoReadyTarget, strings.Join(seen, "; "))
}

// rank orders the targets for sid, highest rendezvous weight first.
func (p *placer) rank(sid string) []Target {
	out := append([]Target(nil), p.targets...)
	w := make(map[string]uint64, len(out))
	for _, t := range out {
		h := fnv.New64a()
		h.Write([]byte(sid))
		h.Write([]byte{0})
		h.Write([]byte(t.SystemID))
		w[t.SystemID] = h.Sum64()
	}
	for i := 1; i < len(out); i++ { // a handful of sentinels: insertion sort
		for j := i; j > 0 && w[out[j].SystemID] > w[out[j-1].SystemID]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if i := slices.IndexFunc(out, func(t Target) bool { return t.SystemID == p.home }); i > 0 {
		home := out[i] // the home sentinel first, the others in rendezvous order after it
		copy(out[1:i+1], out[:i])
		out[0] = home
	}
	return out
}

// isReady reports t's readiness, from the cache when fresh, else by probing its /readyz (or
// waiting for the probe another hello started).
func (p *placer) isReady(t Target) (bool, string) {
	now := p.now()
	p.mu.Lock()
	if r, ok := p.ready[t.SystemID]; ok && now.Sub(r.at) < readyTTL {
		p.mu.Unlock()
		if r.ok {
			return true, "ready"
		}
		return false, "not ready (cached)"
	}
	if c := p.probing[t.SystemID]; c != nil {
		p.mu.Unlock()
		<-c.done
		return c.ok, c.why
	}
	c := &probeCall{done: make(chan struct{})}
	p.probing[t.SystemID] = c
	p.mu.Unlock()

	c.ok, c.why = p.probe(t)
	p.mu.Lock()
	p.ready[t.SystemID] = readiness{ok: c.ok, at: now}
	delete(p.probing, t.SystemID)
	p.mu.Unlock()
	close(c.done)
	return c.ok, c.why
}

func (p *placer) probe(t Target) (bool, string) {
	u, err := readyURL(t.AttachURL)
	if err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false, "unreachable"
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("readyz %d", resp.StatusCode)
	}
	return true, "ready"
}

// readyURL is the sentinel's /readyz for its attach URL (same host, http for ws, https for wss).
func readyURL(attach string) (string, error) {
	u, err := url.Parse(attach)
	if err != nil {
		return "", fmt.Errorf("attach URL %q: %w", attach, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("attach URL %q: want ws:// or wss://", attach)
	}
	u.Path, u.RawQuery = "/readyz", ""
	return u.String(), nil
}

// parseTargets reads FAME_WELCOME_TARGETS: "id=ws://host/fame/v1/attach/ws/downstream,..."
func parseTargets(s string) ([]Target, error) {
	var out []Target
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, u, ok := strings.Cut(part, "=")
		id, u = strings.TrimSpace(id), strings.TrimSpace(u)
		if !ok || id == "" || u == "" {
			return nil, fmt.Errorf("FAME_WELCOME_TARGETS: %q is not id=attach-url", part)
		}
		if !validSystemID(id) {
			return nil, fmt.Errorf("FAME_WELCOME_TARGETS: invalid sentinel id %q", id)
		}
		if _, err := readyURL(u); err != nil {
			return nil, fmt.Errorf("FAME_WELCOME_TARGETS: %w", err)
		}
		if seen[id] {
			return nil, fmt.Errorf("FAME_WELCOME_TARGETS: sentinel %q twice", id)
		}
		seen[id] = true
		out = append(out, Target{SystemID: id, PhysicalPath: "/" + id, AttachURL: u})
	}
	return out, nil
}

func targetIDs(ts []Target) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.SystemID)
	}
	return out
}
