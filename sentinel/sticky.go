package sentinel

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/fame-go/fame/balancer"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/stickiness"
)

// stickyRouter chooses the replica of a pool for each envelope. With stickiness on, every
// envelope of a channel (sec.enc.kid or SecureOpen cid) and of a client session (envelope sid)
// goes to the replica that session was pinned to, as long as that replica is alive and in the
// pool; a new session is placed by the load balancer (HRW with bounded load by default) keyed
// by its sid. With stickiness off the balancer picks per envelope, keyed by envelope id.
type stickyRouter struct {
	s     *Sentinel
	table *stickiness.Table // nil when stickiness is off
	store *stickiness.Store
	stop  chan struct{}
	// closed holds the channels purged with their replica, for a short while (closedchan.go).
	closed closedChannels
}

func newStickyRouter(s *Sentinel) (*stickyRouter, error) {
	r := &stickyRouter{s: s, stop: make(chan struct{})}
	if !s.opts.Stickiness {
		return r, nil
	}
	lvl, err := stickiness.ParseLevel(string(s.opts.StickinessLevel))
	if err != nil {
		return nil, fmt.Errorf("sentinel: stickiness: %w", err)
	}
	cfg := stickiness.DefaultConfig()
	cfg.SecurityLevel = lvl
	cfg.DefaultTTL, cfg.MaxTTL, cfg.CacheMax = s.opts.StickyDefaultTTL, s.opts.StickyMaxTTL, s.opts.StickyCacheMax
	if r.table, err = stickiness.NewTable(cfg); err != nil {
		return nil, fmt.Errorf("sentinel: stickiness: %w", err)
	}
	if s.opts.StorageProfile == "bbolt" {
		// A corrupt file is moved aside (logged, counted) and a fresh store opened, so the
		// sentinel always serves with persistence on. A file locked by another process (a
		// second sentinel on the same path) or one we may not open is fatal: serving without
		// the persistence the operator asked for would be silent loss.
		st, err := stickiness.OpenStoreWith(s.opts.StoragePath, stickiness.StoreOptions{Logger: s.log, RecoverCorrupt: true})
		if err != nil {
			return nil, fmt.Errorf("sentinel: stickiness store %s: %w", s.opts.StoragePath, err)
		}
		r.store = st
		if s.opts.ID == "" {
			s.log.Warn("stickiness store in use without a fixed sentinel id (FAME_NODE_ID): client paths, and so restored session bindings, change with every start",
				"path", s.opts.StoragePath)
		}
		if n, stored, err := r.table.RestoreFrom(st); err != nil {
			s.log.Error("stickiness store unreadable; starting with empty bindings", "path", s.opts.StoragePath, "err", err)
		} else {
			s.log.Info("stickiness bindings restored", "restored", n, "stored", stored)
		}
	}
	go r.sweeper()
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
	if r.store != nil {
		if err := r.store.Close(); err != nil {
			r.s.log.Error("closing stickiness store", "err", err)
		}
	}
}

// pick returns the member of pool p that should receive the envelope.
func (r *stickyRouter) pick(src *conn, p *pool, members []*conn, h *envelope.Header) *conn {
	if len(members) == 1 {
		r.note(members[0], h)
		return members[0]
	}
	if r.table == nil {
		return r.balance(members, h.ID)
	}
	if len(h.EncKID) > 0 {
		if id, ok := r.table.LookupChannel(string(h.EncKID)); ok {
			if c := memberByID(members, id); c != nil {
				return c
			}
		}
	}
	if len(h.SID) > 0 {
		if id, ok := r.table.Lookup(string(h.SID)); ok {
			if c := memberByID(members, id); c != nil {
				r.note(c, h)
				return c
			}
		}
	}
	key := h.SID
	if len(key) == 0 {
		key = h.ID
	}
	c := r.balance(members, key)
	if c != nil && len(h.SID) > 0 {
		r.table.Bind(string(h.SID), c.systemID, 0)
		r.note(c, h)
	}
	return c
}

// note records channel ids opened towards the chosen replica.
func (r *stickyRouter) note(c *conn, h *envelope.Header) {
	if r.table == nil {
		return
	}
	if string(h.FrameType) == envelope.TypeSecureOpen && len(h.FrameCID) > 0 {
		r.table.BindChannel(string(h.FrameCID), string(h.SID), c.systemID)
	}
}

func (r *stickyRouter) balance(members []*conn, key []byte) *conn {
	mp := memberPool.Get().(*[]balancer.Member)
	ms := (*mp)[:0]
	for _, m := range members {
		mb := balancer.Member{ID: m.systemID}
		if r.table != nil {
			mb.Load = int64(r.table.SessionsOn(m.systemID))
		}
		ms = append(ms, mb)
	}
	id, ok := r.s.lb.Pick(string(key), ms)
	*mp = ms
	memberPool.Put(mp)
	if !ok {
		return nil
	}
	return memberByID(members, id)
}

// memberPool recycles the member lists handed to the balancer (one per pick without stickiness).
var memberPool = sync.Pool{New: func() any { s := make([]balancer.Member, 0, 16); return &s }}

func memberByID(members []*conn, id string) *conn {
	for _, m := range members {
		if m.systemID == id {
			return m
		}
	}
	return nil
}

// learn inspects envelopes coming up from replicas: AFTs in meta.set.aft and SecureAccept
// replies pin the client session (and channel) to the replica that sent them. It returns
// false when the envelope must not be forwarded: a SecureAccept for a channel that was opened
// towards another replica (a channel takeover), which is nacked to the sender instead.
func (r *stickyRouter) learn(src *conn, h *envelope.Header) bool {
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
			r.table.BindChannel(string(h.FrameCID), envelope.SecureDigest(loc), src.systemID)
		}
	}
	return true
}

// replicaGone purges the bindings of a lost replica and tells each affected client to re-open
// its channels (SecureClose), so no ciphertext is sent to a replica that cannot read it.
func (r *stickyRouter) replicaGone(c *conn) {
	if r.table == nil || c.systemID == "" {
		return
	}
	start := time.Now()
	lost := r.table.PurgeReplica(c.systemID)
	closes := 0
	for _, l := range lost {
		for _, cid := range l.ChannelIDs {
			r.closed.add(cid, start)
		}
		client := r.s.routes.bySID(l.ClientSID)
		if client == nil {
			continue
		}
		for _, cid := range l.ChannelIDs {
			e, err := envelope.New(&envelope.SecureClose{CID: cid, Reason: "replica " + c.systemID + " is gone; re-open the channel"})
			if err != nil {
				continue
			}
			e.SID, e.To = r.s.sid, "__sys__@"+client.path
			r.s.sec.signOwn(e)
			if client.sendOwn(e, 0) {
				closes++
			}
		}
	}
	if len(lost) > 0 {
		r.s.metrics.repins.Add(float64(len(lost)))
		r.s.metrics.secureCloses.Add(float64(closes))
		r.s.log.Info("replica bindings purged", "replica", c.systemID, "sessions", len(lost),
			"secure_close_sent", closes, "took", time.Since(start))
	}
}

// memberJoined persists pool membership so that a restarted sentinel knows which bindings to
// keep when their replica re-attaches.
func (r *stickyRouter) memberJoined(c *conn, a envelope.Address) {
	if r.store != nil && a.IsWildcard() {
		r.store.SaveMember(a.String(), c.systemID)
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
	cfg := stickiness.Config{Enabled: false, SecurityLevel: stickiness.LevelSignedOptional}
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
func (r *stickyRouter) sessionsOn(c *conn) int {
	if r.table == nil {
		return 0
	}
	return r.table.SessionsOn(c.systemID)
}

func (r *stickyRouter) stats() stickiness.Stats {
	if r.table == nil {
		return stickiness.Stats{}
	}
	return r.table.Stats()
}
