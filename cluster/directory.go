package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReplicaState is a replica's state in the directory.
type ReplicaState string

const (
	ReplicaUp       ReplicaState = "up"
	ReplicaDraining ReplicaState = "draining"
	ReplicaDown     ReplicaState = "down"
)

// Replica is one directory entry: a replica attached to some sentinel.
type Replica struct {
	ID       string       `json:"-"`
	Sentinel string       `json:"s"`
	State    ReplicaState `json:"st"`
	Pools    []string     `json:"p,omitempty"` // pool addresses it serves (math@*.fame.fabric)
	// Caps are the capabilities it advertises (CapabilityAdvertise), so that a request
	// addressed by capabilities finds a provider on another sentinel. At most MaxReplicaCaps
	// names of at most MaxCapLen bytes (Set keeps the first, sorted): a provider's entry stays
	// a small KV value however much it advertises.
	Caps []string `json:"c,omitempty"`
}

const (
	// MaxReplicaCaps bounds the capability names of one directory entry.
	MaxReplicaCaps = 64
	// MaxCapLen bounds one capability name in the directory; longer ones stay local.
	MaxCapLen = 128
)

// BoundCaps returns caps sorted, without duplicates and names over MaxCapLen, and at most
// MaxReplicaCaps of them: what a directory entry carries.
func BoundCaps(caps []string) []string {
	if len(caps) == 0 {
		return nil
	}
	out := make([]string, 0, min(len(caps), MaxReplicaCaps))
	for _, c := range caps {
		if c != "" && len(c) <= MaxCapLen {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	out = slices.Compact(out)
	if len(out) > MaxReplicaCaps {
		out = out[:MaxReplicaCaps]
	}
	return out
}

// DirectoryBucket is the KV bucket name of cluster name's replica directory.
func DirectoryBucket(name string) string { return "fame_" + name + "_replicas" }

// Directory is the cluster-wide set of replicas: each sentinel publishes
// the replicas attached to it, every DirectoryTTL/3, with a per-key TTL of
// DirectoryTTL, so the replicas of a sentinel that dies leave every view
// within DirectoryTTL even if no one deletes them; and a replica whose
// sentinel the bus reports down (3 missed heartbeats) is reported down at
// once. Reads (Get, Live, All) are local memory kept by a watch.
type Directory struct {
	cfg    Config
	log    *slog.Logger
	js     jetstream.JetStream
	bus    Bus
	bucket string

	mu     sync.RWMutex
	remote map[string]Replica // from the watch, every sentinel's (ours included)
	owned  map[string]Replica // ours, to publish
	gone   []string           // ours, to delete
	// left keeps the entries that left the directory for Grace, as down: Serving lists them,
	// so a pool whose replicas are between sentinels reads as away (a retryable nack), not
	// as absent.
	left map[string]leftReplica
	// expired holds the remote entries the KV expired (their TTL ran out) while their
	// sentinel's heartbeats were still heard: kept, see apply.
	expired map[string]time.Time
	kick    chan struct{}
	kvh     jetstream.KeyValue

	ready  chan struct{}
	synced chan struct{}
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewDirectory starts the directory over js; bus answers sentinel liveness
// (nil: every sentinel counts as up). Like NewKVStore it returns at once
// and binds the bucket in the background.
func NewDirectory(js jetstream.JetStream, bus Bus, cfg Config, o StoreOptions) (*Directory, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Directory{
		cfg: cfg, js: js, bus: bus, bucket: DirectoryBucket(cfg.Name),
		log:    o.Logger.With("component", "cluster-directory", "cluster", cfg.Name),
		remote: map[string]Replica{}, owned: map[string]Replica{}, left: map[string]leftReplica{}, expired: map[string]time.Time{},
		kick: make(chan struct{}, 1), ready: make(chan struct{}), synced: make(chan struct{}),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go d.run()
	return d, nil
}

type leftReplica struct {
	r  Replica
	at time.Time
}

// maxLeft bounds the entries kept after they left.
const maxLeft = 4096

// noteLeft remembers r, which left the directory now. Caller holds d.mu.
func (d *Directory) noteLeft(r Replica) {
	now := time.Now()
	if len(d.left) >= maxLeft/4 {
		for id, l := range d.left {
			if now.Sub(l.at) >= d.cfg.Grace {
				delete(d.left, id)
			}
		}
	}
	if len(d.left) < maxLeft {
		d.left[r.ID] = leftReplica{r: r, at: now}
	}
}

// Ready is closed once the bucket is bound; Synced once its contents are loaded.
func (d *Directory) Ready() <-chan struct{}  { return d.ready }
func (d *Directory) Synced() <-chan struct{} { return d.synced }

func dirKey(id string) string { return "r." + base64.RawURLEncoding.EncodeToString([]byte(id)) }

// Set publishes (now, in the background, and again every DirectoryTTL/3) a
// replica attached to this sentinel. It is visible locally at once.
func (d *Directory) Set(r Replica) {
	if r.ID == "" {
		return
	}
	r.Sentinel = d.cfg.SentinelID
	if r.State == "" {
		r.State = ReplicaUp
	}
	r.Pools = slices.Clone(r.Pools)
	sort.Strings(r.Pools)
	r.Caps = BoundCaps(r.Caps)
	d.mu.Lock()
	d.owned[r.ID] = r
	d.remote[r.ID] = r
	delete(d.left, r.ID)
	d.gone = slices.DeleteFunc(d.gone, func(g string) bool { return g == r.ID })
	d.mu.Unlock()
	d.poke()
}

// Remove withdraws a replica of this sentinel (detached, gone).
func (d *Directory) Remove(id string) {
	d.mu.Lock()
	if r, ok := d.owned[id]; ok {
		delete(d.owned, id)
		delete(d.remote, id)
		d.gone = append(d.gone, id)
		r.ID = id
		d.noteLeft(r)
	}
	d.mu.Unlock()
	d.poke()
}

func (d *Directory) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// effective applies sentinel liveness to an entry.
func (d *Directory) effective(r Replica) Replica {
	if r.Sentinel != d.cfg.SentinelID && d.bus != nil {
		switch d.bus.State(r.Sentinel) {
		case PeerDown:
			r.State = ReplicaDown
		case PeerDraining:
			if r.State == ReplicaUp {
				r.State = ReplicaDraining
			}
		}
	}
	return r
}

// Get returns a replica's entry, its state adjusted by its sentinel's liveness.
func (d *Directory) Get(id string) (Replica, bool) {
	d.mu.RLock()
	r, ok := d.remote[id]
	d.mu.RUnlock()
	if !ok {
		return Replica{}, false
	}
	return d.effective(r), true
}

// All returns every entry, sorted by id.
func (d *Directory) All() []Replica {
	d.mu.RLock()
	out := make([]Replica, 0, len(d.remote))
	for _, r := range d.remote {
		out = append(out, d.effective(r))
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Live returns the ids of the replicas of pool that are up (on a sentinel
// that is up), sorted: the set HRW places new pins over.
func (d *Directory) Live(pool string) []string {
	var out []string
	d.mu.RLock()
	for id, r := range d.remote {
		if _, in := slices.BinarySearch(r.Pools, pool); in && d.effective(r).State == ReplicaUp {
			out = append(out, id)
		}
	}
	d.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Serving returns the entries of pool in any state (up, draining, down),
// their states adjusted by their sentinels' liveness, and those that left
// the directory less than Grace ago, as down; sorted by id. The router asks
// it only when Live is empty, to tell a pool whose replicas are away for a
// moment (a retryable nack) from one that does not exist.
func (d *Directory) Serving(pool string) []Replica {
	var out []Replica
	now := time.Now()
	d.mu.RLock()
	for id, r := range d.remote {
		if _, in := slices.BinarySearch(r.Pools, pool); in {
			r = d.effective(r)
			r.ID = id
			out = append(out, r)
		}
	}
	for id, l := range d.left {
		if _, in := slices.BinarySearch(l.r.Pools, pool); in && now.Sub(l.at) < d.cfg.Grace {
			if _, back := d.remote[id]; !back {
				r := l.r
				r.State = ReplicaDown
				out = append(out, r)
			}
		}
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close stops publishing; this sentinel's entries are deleted (best effort,
// bounded by WriteTimeout) so peers need not wait for their TTL.
func (d *Directory) Close() error {
	d.mu.Lock()
	for id := range d.owned {
		d.gone = append(d.gone, id)
	}
	clear(d.owned)
	d.mu.Unlock()
	select {
	case <-d.ready:
		d.flush(d.kvOrNil())
	default:
	}
	d.cancel()
	d.wg.Wait()
	return nil
}

func (d *Directory) kvOrNil() jetstream.KeyValue {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.kvh
}

// ttlBucket is the configuration of a bucket whose entries carry their own TTL (the replica
// directory, the key directory): in memory, one revision per key, the bucket's own TTL only a
// bound.
func ttlBucket(bucket, description string, cfg Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         bucket,
		Description:    description,
		History:        1,
		TTL:            cfg.DirectoryTTL * 6,
		Storage:        jetstream.MemoryStorage,
		Replicas:       cfg.Replicas,
		LimitMarkerTTL: markerTTL,
	}
}

func (d *Directory) run() {
	defer d.wg.Done()
	kv, err := bindKV(d.ctx, d.js, ttlBucket(d.bucket, "fame-go replica directory", d.cfg), d.log)
	if err != nil {
		return
	}
	d.mu.Lock()
	d.kvh = kv
	d.mu.Unlock()
	close(d.ready)
	d.wg.Add(1)
	go d.watch(kv)
	t := time.NewTicker(d.cfg.DirectoryTTL / 3)
	defer t.Stop()
	d.flush(kv)
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.kick:
			d.flush(kv)
		case <-t.C:
			d.flush(kv)
			d.pruneExpired()
		}
	}
}

// flush publishes every owned entry with its TTL and deletes the gone ones.
func (d *Directory) flush(kv jetstream.KeyValue) {
	if kv == nil {
		return
	}
	d.mu.Lock()
	owned := make([]Replica, 0, len(d.owned))
	for _, r := range d.owned {
		owned = append(owned, r)
	}
	gone := d.gone
	d.gone = nil
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.WriteTimeout)
	defer cancel()
	var failed []string
	for _, id := range gone {
		if err := kv.Delete(ctx, dirKey(id)); err != nil {
			d.log.Warn("directory delete failed; retried at the next refresh", "replica", id, "err", err)
			failed = append(failed, id)
		}
	}
	if len(failed) > 0 {
		// Peers keep an expired entry while this sentinel is alive (apply), so its TTL
		// alone would not take it out of their views.
		d.mu.Lock()
		for _, id := range failed {
			if _, again := d.owned[id]; !again && !slices.Contains(d.gone, id) {
				d.gone = append(d.gone, id)
			}
		}
		d.mu.Unlock()
	}
	for _, r := range owned {
		v, err := json.Marshal(r)
		if err != nil {
			continue
		}
		// KV Put cannot set a per-key TTL; a direct publish to the key's
		// subject with a message TTL can (bucket with LimitMarkerTTL).
		msg := &nats.Msg{Subject: "$KV." + d.bucket + "." + dirKey(r.ID), Data: v}
		if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(d.cfg.DirectoryTTL)); err != nil {
			d.log.Warn("directory publish failed; retried on the next refresh", "replica", r.ID, "err", err)
		}
	}
}

func (d *Directory) watch(kv jetstream.KeyValue) {
	defer d.wg.Done()
	watchKV(d.ctx, d.js.Conn(), kv, "KV_"+d.bucket, d.log, d.apply, func() { d.once.Do(func() { close(d.synced) }) })
}

func (d *Directory) apply(e jetstream.KeyValueEntry) {
	raw, ok := strings.CutPrefix(e.Key(), "r.")
	idb, err := base64.RawURLEncoding.DecodeString(raw)
	if !ok || err != nil || len(idb) == 0 {
		return
	}
	id := string(idb)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, mine := d.owned[id]; mine {
		return // our own view is authoritative for our replicas
	}
	if e.Operation() != jetstream.KeyValuePut {
		if r, ok := d.remote[id]; ok {
			if e.Operation() == jetstream.KeyValuePurge && d.bus != nil && d.bus.State(r.Sentinel) != PeerDown {
				// Expired (a MaxAge marker), not deleted: its sentinel is alive, so its
				// refreshes were held up (a KV write stall: the stream's leader died or froze)
				// and it republishes the entry at its next one; its removals are deletes.
				// Dropped, a healthy replica would leave every view, and a pool whose only
				// live replica it is would be refused NO_ROUTE. Kept until its sentinel is
				// down (pruneExpired) or deletes it.
				d.expired[id] = time.Now()
				return
			}
			r.ID = id
			d.noteLeft(r)
		}
		delete(d.remote, id)
		delete(d.expired, id)
		return
	}
	var r Replica
	if err := json.Unmarshal(e.Value(), &r); err != nil || r.Sentinel == "" {
		d.log.Warn("undecodable directory entry; ignored", "key", e.Key(), "err", err)
		return
	}
	if r.Sentinel == d.cfg.SentinelID {
		// Names this sentinel but is not attached here: a put that raced our delete of a
		// replica that left, or one of a previous run with the same id. Taken in, it would
		// be "live" with no connection behind it and its calls nacked NO_ROUTE.
		delete(d.remote, id)
		return
	}
	r.ID = id
	sort.Strings(r.Pools)
	d.remote[id] = r
	delete(d.left, id)
	delete(d.expired, id)
}

// pruneExpired drops the expired entries whose sentinel is down now.
func (d *Directory) pruneExpired() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range d.expired {
		r, ok := d.remote[id]
		if ok && d.bus != nil && d.bus.State(r.Sentinel) != PeerDown {
			continue
		}
		if ok {
			r.ID = id
			d.noteLeft(r)
			delete(d.remote, id)
		}
		delete(d.expired, id)
	}
}
