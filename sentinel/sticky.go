package sentinel

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/balancer"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/stickiness"
	"github.com/fame-go/fame/tracing"

	"github.com/fame-go/fame/security/aft"
)

// stickyRouter chooses the replica of a pool for each envelope. With stickiness on, every
// envelope of a channel (sec.enc.kid or SecureOpen cid) and of a client session (envelope sid)
// goes to the replica that session was pinned to, as long as that replica is alive and in the
// pool; a new session is placed by the load balancer (HRW with bounded load by default) keyed
// by its sid. With stickiness off the balancer picks per envelope, keyed by envelope id.
type stickyRouter struct {
	stickyDeps
	table *stickiness.Table // nil when stickiness is off
	store *stickiness.Store
	stop  chan struct{}
	// closed holds the channels purged with their replica, for a short while (closedchan.go).
	closed closedChannels
	// drains holds the replicas being drained (replicadrain.go); its loop ends with stop.
	drains *replicaDrains
	// restoredUntil ends the restore grace: until then a call whose restored binding names a
	// replica that has not re-attached yet is nacked (retryable) instead of re-balanced,
	// which would move its session for good, and its channel to a replica that cannot read it.
	restoredUntil atomic.Int64 // unix nanos; 0 once the grace is over (or there was none)
	// loops counts the router's goroutines (sweeper, drain loop); close waits for them.
	loops sync.WaitGroup
}

// restoreGrace is how long after a restart with restored bindings their replicas get to
// re-attach (their reconnect back-off starts at 1 s and doubles while the sentinel is away).
const restoreGrace = 10 * time.Second

// stickyDeps is what the sticky router is built with.
type stickyDeps struct {
	opts    Options // Stickiness*, StorageProfile, StoragePath and ID are read, at construction only
	log     *slog.Logger
	metrics *metrics
	lb      balancer.Strategy
	// routes finds the client of a purged session (bySID) and answers sharePool for AFT checks.
	routes *routeTable
	// sec answers who owns a sid or a key for the AFT checks (aft_check.go).
	sec    keyOwners
	sign   ownSigner       // signs the SecureClose the router originates
	refuse refuser         // AFT and channel-takeover refusals
	sid    string          // the sentinel's own sid, on what it originates
	tracer *tracing.Tracer // re-pin spans; nil when tracing is off
}

func newStickyRouter(d stickyDeps) (*stickyRouter, error) {
	r := &stickyRouter{stickyDeps: d, stop: make(chan struct{})}
	r.drains = newReplicaDrains(d.opts.DrainTimeout, d.metrics.reg)
	o := d.opts
	if !o.Stickiness {
		return r, nil
	}
	lvl, err := stickiness.ParseLevel(string(o.StickinessLevel))
	if err != nil {
		return nil, fmt.Errorf("sentinel: stickiness: %w", err)
	}
	cfg := stickiness.DefaultConfig()
	cfg.SecurityLevel = lvl
	cfg.DefaultTTL, cfg.MaxTTL, cfg.CacheMax = o.StickyDefaultTTL, o.StickyMaxTTL, o.StickyCacheMax
	if r.table, err = stickiness.NewTable(cfg); err != nil {
		return nil, fmt.Errorf("sentinel: stickiness: %w", err)
	}
	if o.StorageProfile == "bbolt" {
		// A corrupt file is moved aside (logged, counted) and a fresh store opened, so the
		// sentinel always serves with persistence on. A file locked by another process (a
		// second sentinel on the same path) or one we may not open is fatal: serving without
		// the persistence the operator asked for would be silent loss.
		st, err := stickiness.OpenStoreWith(o.StoragePath, stickiness.StoreOptions{Logger: d.log, RecoverCorrupt: true})
		if err != nil {
			return nil, fmt.Errorf("sentinel: stickiness store %s: %w", o.StoragePath, err)
		}
		r.store = st
		if o.ID == "" {
			d.log.Warn("stickiness store in use without a fixed sentinel id (FAME_NODE_ID): client paths, and so restored session bindings, change with every start",
				"path", o.StoragePath)
		}
		if n, stored, err := r.table.RestoreFrom(st); err != nil {
			d.log.Error("stickiness store unreadable; starting with empty bindings", "path", o.StoragePath, "err", err)
		} else {
			d.log.Info("stickiness bindings restored", "restored", n, "stored", stored, "replicas_grace", restoreGrace)
			if n > 0 {
				r.restoredUntil.Store(time.Now().Add(restoreGrace).UnixNano())
			}
		}
	}
	r.loops.Add(1)
	go func() { defer r.loops.Done(); r.sweeper() }()
	return r, nil
}

func (r *stickyRouter) sweeper() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.table.Sweep()
		}
	}
}

func (r *stickyRouter) close() {
	select {
	case <-r.stop:
		return
	default:
		close(r.stop)
	}
	r.loops.Wait() // the drain loop may be pushing a status; the sweeper may be sweeping
	if r.store != nil {
		if err := r.store.Close(); err != nil {
			r.log.Error("closing stickiness store", "err", err)
		}
	}
}

// pick returns the member of pool p that should receive the envelope.
func (r *stickyRouter) pick(src peer, p *pool, members []peer, h *envelope.Header) peer {
	c, _, _ := r.pickWhy(src, p, members, h)
	return c
}

// pickWhy is pick that also says whether a binding (channel or session) chose the member,
// and (wait) when no member is chosen because the bound replica is still re-attaching after
// a restart (restoredUntil).
func (r *stickyRouter) pickWhy(src peer, p *pool, members []peer, h *envelope.Header) (c peer, sticky, wait bool) {
	if r.drains.on() {
		return r.pickDraining(members, h), false, false
	}
	if len(members) == 1 && !r.restoring() {
		r.note(members[0], h)
		return members[0], false, false
	}
	if r.table == nil {
		return r.balance(members, h.ID), false, false
	}
	if len(h.EncKID) > 0 {
		if id, ok := r.table.LookupChannel(string(h.EncKID)); ok {
			if c := memberByID(members, id); c != nil {
				return c, true, false
			}
			if r.restoring() {
				return nil, false, true
			}
		}
	}
	if len(h.SID) > 0 {
		if id, ok := r.table.Lookup(string(h.SID)); ok {
			if c := memberByID(members, id); c != nil {
				r.note(c, h)
				return c, true, false
			}
			if r.restoring() {
				return nil, false, true
			}
		}
	}
	key := h.SID
	if len(key) == 0 {
		key = h.ID
	}
	c = r.balance(members, key)
	if c != nil && len(h.SID) > 0 {
		r.table.Bind(string(h.SID), c.ident().systemID, 0)
		r.note(c, h)
	}
	return c, false, false
}

// restoring reports whether the restore grace is on: one atomic load once it is over.
func (r *stickyRouter) restoring() bool {
	until := r.restoredUntil.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() < until {
		return true
	}
	r.restoredUntil.CompareAndSwap(until, 0)
	return false
}

// note records channel ids opened towards the chosen replica.
func (r *stickyRouter) note(c peer, h *envelope.Header) {
	if r.table == nil {
		return
	}
	if string(h.FrameType) == envelope.TypeSecureOpen && len(h.FrameCID) > 0 {
		r.table.BindChannel(string(h.FrameCID), string(h.SID), c.ident().systemID)
	}
}

func (r *stickyRouter) balance(members []peer, key []byte) peer {
	mp := memberPool.Get().(*[]balancer.Member)
	ms := (*mp)[:0]
	for _, m := range members {
		mb := balancer.Member{ID: m.ident().systemID}
		if r.table != nil {
			mb.Load = int64(r.table.SessionsOn(mb.ID))
		}
		ms = append(ms, mb)
	}
	id, ok := r.lb.Pick(string(key), ms)
	*mp = ms
	memberPool.Put(mp)
	if !ok {
		return nil
	}
	return memberByID(members, id)
}

// memberPool recycles the member lists handed to the balancer (one per pick without stickiness).
var memberPool = sync.Pool{New: func() any { s := make([]balancer.Member, 0, 16); return &s }}

func memberByID(members []peer, id string) peer {
	for _, m := range members {
		if m.ident().systemID == id {
			return m
		}
	}
	return nil
}

// learn inspects envelopes coming up from replicas: AFTs in meta.set.aft and SecureAccept
// replies pin the client session (and channel) to the replica that sent them. It returns
// false when the envelope must not be forwarded: a SecureAccept for a channel that was opened
// towards another replica (a channel takeover), which is nacked to the sender instead.
func (r *stickyRouter) learn(src peer, h *envelope.Header) bool {
	if r.table == nil || src == nil {
		return true
	}
	accept := string(h.FrameType) == envelope.TypeSecureAccept && len(h.FrameCID) > 0 && len(h.To) > 0
	if accept {
		if bound, taken := r.channelTakeover(src, string(h.FrameCID)); taken {
			r.refuseAFT(src, h, &aftRefusal{reason: refusalChannelTakeover, code: codeChannelTakeover,
				detail: "SecureAccept for a channel opened towards another replica",
				attrs:  []any{"cid", string(h.FrameCID), "channel_replica", bound}})
			return false
		}
	}
	if len(h.Meta) > 0 {
		if tok, ok := stickiness.ExtractAFT(json.RawMessage(h.Meta)); ok {
			r.learnAFT(src, h, tok) // ownership checks: aft_check.go
		}
	}
	if accept {
		if _, loc, ok := envelope.SplitInbox(string(h.To)); ok && len(loc) > 0 && loc[0] == '/' {
			r.table.BindChannel(string(h.FrameCID), envelope.SecureDigest(loc), src.ident().systemID)
		}
	}
	return true
}

// replicaGone purges the bindings of a lost replica and tells each affected client to re-open
// its channels (SecureClose), so no ciphertext is sent to a replica that cannot read it.
func (r *stickyRouter) replicaGone(c peer) {
	replica := c.ident().systemID
	if r.table == nil || replica == "" {
		r.drainGone(c, 0)
		return
	}
	start := time.Now()
	lost := r.table.PurgeReplica(replica)
	r.drainGone(c, len(lost))
	closes := 0
	for _, l := range lost {
		for _, cid := range l.ChannelIDs {
			r.closed.add(cid, start)
		}
		client := r.routes.bySID(l.ClientSID)
		if client == nil {
			continue
		}
		for _, cid := range l.ChannelIDs {
			if r.sendSecureClose(client, cid, "replica "+replica+" is gone; re-open the channel") {
				closes++
			}
		}
	}
	if len(lost) > 0 {
		traceRepin(r.tracer, replica, len(lost), closes)
		r.metrics.repins.Add(float64(len(lost)))
		r.metrics.secureCloses.Add(float64(closes))
		r.log.Info("replica bindings purged", "replica", replica, "sessions", len(lost),
			"secure_close_sent", closes, "took", time.Since(start))
	}
}

// sendSecureClose tells client that channel cid is closed, signed by the sentinel; false
// when the client is gone or its queue refused it.
func (r *stickyRouter) sendSecureClose(client peer, cid, reason string) bool {
	e, err := envelope.New(&envelope.SecureClose{CID: cid, Reason: reason})
	if err != nil {
		return false
	}
	e.SID, e.To = r.sid, "__sys__@"+client.ident().path
	r.sign.signOwn(e)
	return client.sendOwn(e, 0)
}

// memberJoined persists pool membership so that a restarted sentinel knows which bindings to
// keep when their replica re-attaches.
func (r *stickyRouter) memberJoined(c peer, a envelope.Address) {
	if r.store != nil && a.IsWildcard() {
		r.store.SaveMember(a.String(), c.ident().systemID)
	}
}

func (r *stickyRouter) negotiate(offer json.RawMessage) json.RawMessage {
	if len(offer) == 0 {
		return nil
	}
	var o stickiness.Offer
	if err := json.Unmarshal(offer, &o); err != nil {
		return nil
	}
	cfg := stickiness.Config{Enabled: false, SecurityLevel: aft.LevelSignedOptional}
	if r.table != nil {
		cfg = r.table.Config()
	}
	b, err := json.Marshal(stickiness.Negotiate(cfg, &o))
	if err != nil {
		return nil
	}
	return b
}

// sessionsOn is how many client sessions are pinned to c (0 with stickiness off).
func (r *stickyRouter) sessionsOn(c peer) int {
	if r.table == nil {
		return 0
	}
	return r.table.SessionsOn(c.ident().systemID)
}

func (r *stickyRouter) stats() stickiness.Stats {
	if r.table == nil {
		return stickiness.Stats{}
	}
	return r.table.Stats()
}
