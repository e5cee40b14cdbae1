package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/nats-io/nats.go/jetstream"
)

// KV store tuning.
const (
	storeShards  = 16
	storeWorkers = 8    // writes to different keys run in parallel, one key's in order
	storeQueue   = 4096 // per worker; full = ErrBacklog
	clockTick    = 250 * time.Millisecond
	markerTTL    = time.Minute // how long KV keeps the markers of aged-out keys
	// attemptTimeout bounds one KV request; loopback R3 p99 is a few ms, an
	// answer later than this is not coming (its leader died).
	attemptTimeout = 250 * time.Millisecond
)

// KVStore is the BindingStore of a cluster: a JetStream KV bucket
// (replicated R times) as the truth, and a local LRU kept current by a
// watch of the whole bucket as what lookups read.
//
// Lookups never touch the network. A Create or Update takes effect locally
// at once and is written by a background worker (the worker of the key's
// hash, so one key's writes stay in order); when another sentinel won the
// key first (ErrKeyExists, revision mismatch) the worker reads the winner
// and puts it in the LRU before reporting. While the cluster cannot write
// (no quorum, an election after a leader died: measured ~6 s) lookups keep
// answering and writes queue up to storeQueue per worker, then fail with
// ErrBacklog.
//
// Bindings live BindingTTL in the bucket after their last write; a lookup of
// a binding whose write is older than BindingTTL/2 re-writes it in the
// background, so a binding in use never ages out, and one that does age out
// leaves a marker the watches turn into a delete on every sentinel.
type KVStore struct {
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	js     jetstream.JetStream
	bucket string

	sessions, channels [storeShards]lshard
	seed               maphash.Seed

	kv     atomic.Pointer[kvHolder]
	ready  chan struct{} // closed when the bucket is bound
	synced chan struct{} // closed when the watch has delivered the bucket's contents
	syncMu sync.Once

	queues [storeWorkers]chan op
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	clock  atomic.Int64 // coarse unix ns, so Lookup never reads the clock

	watchMu  sync.RWMutex
	watchers map[uint64]func(Event)
	nextW    uint64
}

type kvHolder struct{ kv jetstream.KeyValue }

type lshard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, slot]
}

// slot is one local binding. For a pending write b.Revision is the base
// revision (what the write expects to replace).
type slot struct {
	b          Binding
	pending    bool  // our write not yet confirmed
	written    int64 // unix ns of the confirmed revision's write
	refreshing bool
}

type opKind uint8

const (
	opCreate opKind = iota
	opUpdate
	opRefresh
	opDelete
)

func (o opKind) String() string {
	return [...]string{"create", "update", "refresh", "delete"}[o]
}

type op struct {
	kind opKind
	k    Kind
	id   string
	b    Binding
	rev  uint64
	done func(Result)
}

// StoreOptions configures NewKVStore.
type StoreOptions struct {
	Logger  *slog.Logger
	Metrics *Metrics
}

// BindingsBucket is the KV bucket name of cluster name.
func BindingsBucket(name string) string { return "fame_" + name + "_bindings" }

// NewKVStore starts the store over js. It returns at once: the bucket is
// created or bound in the background (retrying until the cluster has a
// JetStream leader), then the watch loads it. Ready and Synced report the
// two steps.
func NewKVStore(js jetstream.JetStream, cfg Config, o StoreOptions) (*KVStore, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &KVStore{
		cfg: cfg, m: o.Metrics, js: js, bucket: BindingsBucket(cfg.Name),
		log:      o.Logger.With("component", "cluster-bindings", "cluster", cfg.Name),
		seed:     maphash.MakeSeed(),
		ready:    make(chan struct{}),
		synced:   make(chan struct{}),
		watchers: map[uint64]func(Event){},
	}
	per := max(cfg.CacheMax/storeShards, 16)
	for i := range storeShards {
		if s.sessions[i].lru, err = simplelru.NewLRU[string, slot](per, nil); err != nil {
			return nil, fmt.Errorf("cluster: binding cache: %w", err)
		}
		if s.channels[i].lru, err = simplelru.NewLRU[string, slot](per, nil); err != nil {
			return nil, fmt.Errorf("cluster: binding cache: %w", err)
		}
	}
	s.clock.Store(time.Now().UnixNano())
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for i := range s.queues {
		s.queues[i] = make(chan op, storeQueue)
		s.wg.Add(1)
		go s.worker(s.queues[i])
	}
	s.wg.Add(2)
	go s.ticker()
	go s.run()
	return s, nil
}

// Ready is closed once the bucket is bound (writes can start).
func (s *KVStore) Ready() <-chan struct{} { return s.ready }

// Synced is closed once the watch has delivered the bucket's contents.
func (s *KVStore) Synced() <-chan struct{} { return s.synced }

func (s *KVStore) shard(k Kind, id string) *lshard {
	i := maphash.String(s.seed, id) % storeShards
	if k == Channel {
		return &s.channels[i]
	}
	return &s.sessions[i]
}

// Lookup implements BindingStore: local memory, one shard lock, no
// allocation.
func (s *KVStore) Lookup(k Kind, id string) (Binding, bool) {
	if !validKey(k, id) {
		return Binding{}, false
	}
	sh := s.shard(k, id)
	sh.mu.Lock()
	sl, ok := sh.lru.Get(id)
	if !ok {
		sh.mu.Unlock()
		return Binding{}, false
	}
	refresh := !sl.pending && !sl.refreshing && sl.written != 0 &&
		s.clock.Load()-sl.written > int64(s.cfg.BindingTTL/2)
	if refresh {
		sl.refreshing = true
		sh.lru.Add(id, sl)
	}
	sh.mu.Unlock()
	if refresh {
		s.enqueue(op{kind: opRefresh, k: k, id: id, b: sl.b, rev: sl.b.Revision})
	}
	return sl.b, true
}

// Create implements BindingStore.
func (s *KVStore) Create(k Kind, id string, b Binding, done func(Result)) (Binding, bool) {
	if !validKey(k, id) || b.Replica == "" {
		report(done, Result{Binding: b, Err: ErrBadKey})
		return Binding{}, false
	}
	b.Revision = 0
	sh := s.shard(k, id)
	sh.mu.Lock()
	if cur, ok := sh.lru.Get(id); ok {
		sh.mu.Unlock()
		report(done, Result{Binding: cur.b})
		return cur.b, false
	}
	sh.lru.Add(id, slot{b: b, pending: true})
	sh.mu.Unlock()
	s.enqueue(op{kind: opCreate, k: k, id: id, b: b, done: done})
	return b, true
}

// Update implements BindingStore.
func (s *KVStore) Update(k Kind, id string, b Binding, rev uint64, done func(Result)) {
	if !validKey(k, id) || b.Replica == "" {
		report(done, Result{Binding: b, Err: ErrBadKey})
		return
	}
	sh := s.shard(k, id)
	sh.mu.Lock()
	base := rev
	if cur, ok := sh.lru.Peek(id); ok && base == 0 {
		base = cur.b.Revision
	}
	b.Revision = base
	sh.lru.Add(id, slot{b: b, pending: true})
	sh.mu.Unlock()
	s.enqueue(op{kind: opUpdate, k: k, id: id, b: b, rev: rev, done: done})
}

// Delete implements BindingStore.
func (s *KVStore) Delete(k Kind, id string) {
	if !validKey(k, id) {
		return
	}
	sh := s.shard(k, id)
	sh.mu.Lock()
	sh.lru.Remove(id)
	sh.mu.Unlock()
	s.enqueue(op{kind: opDelete, k: k, id: id})
}

// Watch implements BindingStore.
func (s *KVStore) Watch(fn func(Event)) (stop func()) {
	s.watchMu.Lock()
	s.nextW++
	id := s.nextW
	s.watchers[id] = fn
	s.watchMu.Unlock()
	return func() {
		s.watchMu.Lock()
		delete(s.watchers, id)
		s.watchMu.Unlock()
	}
}

// Close implements BindingStore. Queued writes are abandoned (ErrClosed).
func (s *KVStore) Close() error {
	s.cancel()
	s.wg.Wait()
	for _, q := range s.queues {
		for {
			select {
			case o := <-q:
				s.m.write(o.kind.String(), "closed")
				report(o.done, Result{Binding: o.b, Err: ErrClosed})
				continue
			default:
			}
			break
		}
	}
	return nil
}

func (s *KVStore) enqueue(o op) {
	if s.ctx.Err() != nil {
		s.m.write(o.kind.String(), "closed")
		report(o.done, Result{Binding: o.b, Err: ErrClosed})
		return
	}
	q := s.queues[maphash.String(s.seed, o.id)%storeWorkers]
	select {
	case q <- o:
	default:
		s.m.write(o.kind.String(), "backlog")
		if o.kind == opRefresh {
			s.clearRefreshing(o.k, o.id)
		}
		report(o.done, Result{Binding: o.b, Err: ErrBacklog})
	}
}

func (s *KVStore) ticker() {
	defer s.wg.Done()
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.clock.Store(now.UnixNano())
		}
	}
}

// run binds the bucket (retrying until the cluster can create it), then
// watches it for as long as the store is open.
func (s *KVStore) run() {
	defer s.wg.Done()
	kv, err := bindKV(s.ctx, s.js, jetstream.KeyValueConfig{
		Bucket:         s.bucket,
		Description:    "fame-go session and channel bindings",
		History:        1,
		TTL:            s.cfg.BindingTTL,
		Storage:        jetstream.FileStorage,
		Replicas:       s.cfg.Replicas,
		LimitMarkerTTL: markerTTL,
	}, s.log)
	if err != nil {
		return // closed before the cluster was ready
	}
	s.kv.Store(&kvHolder{kv})
	close(s.ready)
	watchKV(s.ctx, s.js.Conn(), kv, "KV_"+s.bucket, s.log, s.apply, func() { s.syncMu.Do(func() { close(s.synced) }) })
}

// apply folds one watched entry into the LRU unless the LRU already holds
// something at least as new.
func (s *KVStore) apply(e jetstream.KeyValueEntry) {
	k, id, err := parseKVKey(e.Key())
	if err != nil {
		s.m.watchEvent("bad")
		return
	}
	rev := e.Revision()
	sh := s.shard(k, id)
	var ev Event
	switch e.Operation() {
	case jetstream.KeyValuePut:
		b, err := decodeBinding(e.Value())
		if err != nil {
			s.m.watchEvent("bad")
			s.log.Warn("undecodable binding in the cluster KV; ignored", "key", e.Key(), "err", err)
			return
		}
		b.Revision = rev
		sh.mu.Lock()
		if cur, ok := sh.lru.Peek(id); ok && cur.b.Revision >= rev {
			sh.mu.Unlock()
			s.m.watchEvent("stale")
			return
		}
		sh.lru.Add(id, slot{b: b, written: e.Created().UnixNano()})
		sh.mu.Unlock()
		s.m.watchEvent("put")
		ev = Event{Kind: k, ID: id, Binding: b}
	default: // delete, purge, or an aged-out key's marker
		sh.mu.Lock()
		cur, ok := sh.lru.Peek(id)
		if !ok || cur.pending || cur.b.Revision >= rev {
			sh.mu.Unlock()
			s.m.watchEvent("stale")
			return
		}
		sh.lru.Remove(id)
		sh.mu.Unlock()
		s.m.watchEvent("delete")
		ev = Event{Kind: k, ID: id, Deleted: true}
	}
	s.notify(ev)
}

func (s *KVStore) notify(ev Event) {
	s.watchMu.RLock()
	defer s.watchMu.RUnlock()
	for _, fn := range s.watchers {
		fn(ev)
	}
}

func (s *KVStore) worker(q chan op) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case o := <-q:
			select {
			case <-s.ready:
			case <-s.ctx.Done():
				s.m.write(o.kind.String(), "closed")
				report(o.done, Result{Binding: o.b, Err: ErrClosed})
				return
			}
			s.write(s.kv.Load().kv, o)
		}
	}
}

// write performs one op against the cluster, bounded by WriteTimeout.
func (s *KVStore) write(kv jetstream.KeyValue, o op) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	key := kvKey(o.k, o.id)
	name := o.kind.String()
	if o.kind == opDelete {
		for {
			actx, acancel := context.WithTimeout(ctx, attemptTimeout)
			err := kv.Delete(actx, key)
			acancel()
			if err == nil {
				s.m.write(name, "won")
				return
			}
			if !sleepCtx(ctx, 50*time.Millisecond) {
				s.m.write(name, "failed")
				s.log.Warn("cluster binding delete failed; the binding ages out", "kind", o.k, "err", err)
				return
			}
		}
	}
	val, err := encodeBinding(o.b)
	if err != nil {
		s.fail(o, err)
		return
	}
	base := o.rev
	if o.kind != opCreate && base == 0 {
		base = s.confirmedRev(o.k, o.id)
	}
	retry := 20 * time.Millisecond
	for {
		// Each attempt gets attemptTimeout, the whole write WriteTimeout: a
		// request that went to a leader as it died has no answer coming, and
		// waiting the whole timeout for it would stretch the stall of an
		// election by that much. Retrying is safe: a create or update that did
		// land makes the retry conflict, and the winner read back is ours.
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		var rev uint64
		if base == 0 {
			rev, err = kv.Create(actx, key, val)
		} else {
			rev, err = kv.Update(actx, key, val, base)
		}
		acancel()
		if err == nil {
			o.b.Revision = rev
			s.confirm(o.k, o.id, o.b, time.Now().UnixNano())
			s.m.write(name, "won")
			report(o.done, Result{Binding: o.b, Won: true})
			return
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if ctx.Err() != nil || !sleepCtx(ctx, retry) {
				s.fail(o, err)
				return
			}
			retry = min(2*retry, 250*time.Millisecond)
			continue
		}
		w, found, cur, gerr := s.winner(ctx, key, base)
		switch {
		case gerr != nil:
			s.fail(o, fmt.Errorf("cluster: read the winner of %s: %w", key, gerr))
			return
		case found && sameBinding(w, o.b):
			// An earlier attempt of ours landed; its answer was lost.
			s.confirm(o.k, o.id, w, time.Now().UnixNano())
			s.m.write(name, "won")
			report(o.done, Result{Binding: w, Won: true})
			return
		case found:
			s.adopt(o.k, o.id, w, time.Now().UnixNano())
			s.m.write(name, "adopted")
			report(o.done, Result{Binding: w})
			return
		}
		// The write that beat ours never landed (or the key was deleted
		// since): try again against what the leader holds now.
		base = cur
	}
}

// winner waits for the write that beat ours to show on the stream leader:
// the leader refuses a conflicting write as soon as the other one is in
// flight, before it is stored (seen in TestCreateRaceOneWinner as "no
// message" right after ErrKeyExists), so it polls, briefly, for a value
// newer than base. found is false when none came: cur is then the
// revision the leader holds (0: none, or a delete).
func (s *KVStore) winner(ctx context.Context, key string, base uint64) (w Binding, found bool, cur uint64, err error) {
	wait := 500 * time.Microsecond
	for range 12 { // ~1 s in all
		var ok bool
		w, ok, cur, err = s.leaderGet(ctx, key)
		if err != nil {
			return Binding{}, false, 0, err
		}
		if ok && w.Revision > base {
			return w, true, cur, nil
		}
		if !sleepCtx(ctx, wait) {
			return Binding{}, false, 0, ctx.Err()
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
	return Binding{}, false, cur, nil
}

func (s *KVStore) fail(o op, err error) {
	s.m.write(o.kind.String(), "failed")
	if o.kind == opRefresh {
		s.clearRefreshing(o.k, o.id)
	}
	s.log.Warn("cluster binding write failed; the local binding stays", "op", o.kind.String(), "kind", o.k, "err", err)
	report(o.done, Result{Binding: o.b, Err: err})
}

// confirm marks our write of b as the cluster's. A later local write still
// pending keeps its value but learns the new base revision.
func (s *KVStore) confirm(k Kind, id string, b Binding, written int64) {
	sh := s.shard(k, id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.lru.Peek(id)
	if !ok {
		return // deleted or evicted meanwhile; the watch re-adds it if it lives
	}
	if cur.pending && !sameBinding(cur.b, b) {
		if cur.b.Revision < b.Revision {
			cur.b.Revision = b.Revision
			sh.lru.Add(id, cur)
		}
		return
	}
	if !cur.pending && cur.b.Revision >= b.Revision {
		return
	}
	sh.lru.Add(id, slot{b: b, written: written})
}

// adopt installs the winner of a lost write.
func (s *KVStore) adopt(k Kind, id string, w Binding, written int64) {
	sh := s.shard(k, id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if cur, ok := sh.lru.Peek(id); ok && !cur.pending && cur.b.Revision >= w.Revision {
		return
	}
	sh.lru.Add(id, slot{b: w, written: written})
}

func (s *KVStore) confirmedRev(k Kind, id string) uint64 {
	sh := s.shard(k, id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if cur, ok := sh.lru.Peek(id); ok {
		return cur.b.Revision
	}
	return 0
}

func (s *KVStore) clearRefreshing(k Kind, id string) {
	sh := s.shard(k, id)
	sh.mu.Lock()
	if cur, ok := sh.lru.Peek(id); ok && cur.refreshing {
		cur.refreshing = false
		sh.lru.Add(id, cur)
	}
	sh.mu.Unlock()
}

func sameBinding(a, b Binding) bool {
	return a.Replica == b.Replica && a.Sentinel == b.Sentinel && a.Epoch == b.Epoch && a.Client == b.Client
}

// bindKV creates or binds a bucket, retrying (the cluster may not have a
// JetStream meta leader yet, or fewer servers than the replication) until
// ctx ends.
func bindKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, log *slog.Logger) (jetstream.KeyValue, error) {
	wait := 50 * time.Millisecond
	start := time.Now()
	warned := false
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		kv, err := js.CreateOrUpdateKeyValue(actx, cfg)
		cancel()
		if err == nil {
			log.Info("cluster KV bucket bound", "bucket", cfg.Bucket, "replicas", cfg.Replicas, "took", time.Since(start))
			return kv, nil
		}
		if !warned && time.Since(start) > 10*time.Second {
			warned = true
			log.Warn("cluster KV bucket not bound yet; retrying (quorum of the cluster up?)", "bucket", cfg.Bucket, "err", err)
		}
		if !sleepCtx(ctx, wait) {
			return nil, ctx.Err()
		}
		wait = min(2*wait, time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// leaderGet reads a key's latest value from the stream leader (KV Get uses
// direct gets, which any replica answers, from a state possibly older than
// the one our write was refused against). found is false for no value or a
// delete marker; cur is the key's last revision either way.
func (s *KVStore) leaderGet(ctx context.Context, key string) (Binding, bool, uint64, error) {
	req, _ := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{"$KV." + s.bucket + "." + key})
	msg, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+s.bucket, req)
	if err != nil {
		return Binding{}, false, 0, err
	}
	var resp struct {
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return Binding{}, false, 0, fmt.Errorf("cluster: msg get reply: %w", err)
	}
	if resp.Error != nil {
		if jetstream.ErrorCode(resp.Error.ErrCode) == jetstream.JSErrCodeMessageNotFound {
			return Binding{}, false, 0, nil
		}
		return Binding{}, false, 0, fmt.Errorf("cluster: msg get: %s (%d)", resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return Binding{}, false, 0, errors.New("cluster: msg get: empty reply")
	}
	// A delete, purge or aged-out marker carries a header and no value.
	if h := string(resp.Message.Hdrs); strings.Contains(h, "KV-Operation") || strings.Contains(h, "Nats-Marker-Reason") {
		return Binding{}, false, resp.Message.Seq, nil
	}
	b, err := decodeBinding(resp.Message.Data)
	if err != nil {
		return Binding{}, false, 0, err
	}
	b.Revision = resp.Message.Seq
	return b, true, b.Revision, nil
}
