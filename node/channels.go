package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"

	"github.com/fame-go/fame/security/aft"
)

// channels is the node's channel encryption state (security.md §7). As initiator it keeps
// one channel per destination address, opened on first use; as responder it accepts any
// SecureOpen. Both kinds live in one ChannelTable by cid. A SecureClose (from the sentinel
// when a replica left, or from a peer that lost the channel) forgets the channel; the next
// call opens a new one and a call in flight on it is re-sent once.
type channels struct {
	opts  security.ChannelOptions
	table *security.ChannelTable

	mu     sync.Mutex
	byDest map[string]*chanSlot
	byCID  map[string]*chanSlot
}

// chanSlot is one channel this node initiated: pending until done is closed, then ch or err.
type chanSlot struct {
	dest string
	hs   *security.ChannelHandshake
	done chan struct{}
	once sync.Once
	ch   *security.Channel
	err  error
}

func (sl *chanSlot) finish(ch *security.Channel, err error) {
	sl.once.Do(func() {
		sl.ch, sl.err = ch, err
		close(sl.done)
	})
}

func newChannels(opts security.ChannelOptions) *channels {
	return &channels{opts: opts, table: security.NewChannelTable(), byDest: map[string]*chanSlot{}, byCID: map[string]*chanSlot{}}
}

// forget drops an initiated channel by cid (and its table entry); it reports whether the
// node knew the cid at all.
func (cs *channels) forget(cid string) bool {
	known := cs.table.Close(cid)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if sl := cs.byCID[cid]; sl != nil {
		delete(cs.byCID, cid)
		if cs.byDest[sl.dest] == sl {
			delete(cs.byDest, sl.dest)
		}
		sl.finish(nil, errChannelClosed)
		known = true
	}
	return known
}

var errChannelClosed = errors.New("node: secure channel closed")

// channelFor returns an established channel to dest, opening one (SecureOpen, wait for
// SecureAccept) when there is none or the old one must be rekeyed.
func (n *Node) channelFor(ctx context.Context, l *link, dest string) (*security.Channel, error) {
	cs := n.sec.channels
	for {
		cs.mu.Lock()
		sl := cs.byDest[dest]
		if sl == nil {
			break // cs.mu stays locked for the open below
		}
		cs.mu.Unlock()
		select {
		case <-sl.done:
			if sl.err == nil && !sl.ch.NeedsRekey() {
				if _, ok := cs.table.Get(sl.ch.CID()); ok {
					return sl.ch, nil
				}
			}
			if sl.err != nil && !errors.Is(sl.err, errChannelClosed) && !errors.Is(sl.err, errLinkLost) {
				cs.forget(sl.hs.CID)
				return nil, sl.err
			}
			if sl.ch != nil && sl.ch.NeedsRekey() {
				n.closeChannel(l, sl.hs.CID, dest, "rekey")
			} else {
				cs.forget(sl.hs.CID)
			}
			continue
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		case <-l.done():
			return nil, errLinkLost
		}
	}
	hs, err := security.NewChannelHandshake(dest, cs.opts.Rand)
	if err != nil {
		cs.mu.Unlock()
		return nil, fmt.Errorf("node: channel to %s: %w", dest, err)
	}
	sl := &chanSlot{dest: dest, hs: hs, done: make(chan struct{})}
	cs.byDest[dest], cs.byCID[hs.CID] = sl, sl
	cs.mu.Unlock()

	env, err := envelope.New(hs.SecureOpen())
	if err != nil {
		cs.forget(hs.CID)
		return nil, err
	}
	env.SID, env.TraceID, env.To, env.ReplyTo, env.CorrID = l.sid, envelope.NewID(), dest, l.sysInbox, envelope.NewID()
	if err := n.sendOn(ctx, l, env); err != nil {
		cs.forget(hs.CID)
		return nil, err
	}
	select {
	case <-sl.done:
		if sl.err != nil {
			cs.forget(hs.CID)
			return nil, sl.err
		}
		return sl.ch, nil
	case <-ctx.Done():
		cs.forget(hs.CID)
		return nil, fmt.Errorf("node: opening a secure channel to %s: %w", dest, ctxErr(ctx))
	case <-l.done():
		cs.forget(hs.CID)
		return nil, errLinkLost
	}
}

// closeChannel forgets cid and tells the other end (best effort).
func (n *Node) closeChannel(l *link, cid, to, reason string) {
	n.sec.channels.forget(cid)
	if to == "" {
		return
	}
	env, err := envelope.New(&envelope.SecureClose{CID: cid, Reason: reason})
	if err != nil {
		return
	}
	env.SID, env.TraceID, env.To = l.sid, envelope.NewID(), to
	n.post(l, env)
}

// onSecureOpen is the responder side: accept, store, answer SecureAccept to replyTo with the
// same corrId, and as a pool replica attach an AFT pinning the opener to this node.
func (n *Node) onSecureOpen(l *link, env *envelope.Envelope) {
	f, err := env.DecodeFrame()
	if err != nil || env.ReplyTo == "" {
		return
	}
	open := f.(*envelope.SecureOpen)
	ch, acc, err := security.AcceptChannel(open, n.sec.channels.opts)
	if err != nil {
		n.log.Warn("refusing secure channel", "cid", open.CID, "err", err)
		if acc == nil {
			acc = &envelope.SecureAccept{Ack: envelope.Ack{OK: false, Reason: err.Error()}, CID: open.CID,
				EphPub: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Alg: security.ChannelAlgOpen}
		}
	} else {
		n.sec.channels.table.Put(ch)
	}
	acc.RefID = env.ID
	out, err := envelope.New(acc)
	if err != nil {
		return
	}
	out.SID, out.TraceID, out.To, out.CorrID = l.sid, env.TraceID, env.ReplyTo, env.CorrID
	if ch != nil && l.aft {
		tok, err := aft.Sign(n.sec.signer.Key, n.sec.signer.Kid, l.sid, env.SID, aft.ScopeNode, aft.MaxTTL, time.Now())
		if err == nil {
			out.Meta, _ = json.Marshal(map[string]map[string]string{"set": {"aft": tok}})
		} else {
			n.log.Warn("AFT not minted", "err", err)
		}
	}
	n.post(l, out)
}

// onSecureAccept completes a channel this node opened.
func (n *Node) onSecureAccept(env *envelope.Envelope) {
	f, err := env.DecodeFrame()
	if err != nil {
		return
	}
	acc := f.(*envelope.SecureAccept)
	cs := n.sec.channels
	cs.mu.Lock()
	sl := cs.byCID[acc.CID]
	cs.mu.Unlock()
	if sl == nil {
		n.log.Debug("SecureAccept for no pending channel", "cid", acc.CID)
		return
	}
	if !acc.OK {
		sl.finish(nil, &NackError{Code: codeChannelHandshakeError, Reason: acc.Reason})
		return
	}
	ch, err := sl.hs.Complete(acc, cs.opts)
	if err != nil {
		sl.finish(nil, fmt.Errorf("node: channel to %s: %w", sl.dest, err))
		return
	}
	cs.table.Put(ch)
	sl.finish(ch, nil)
}

// onSecureClose forgets the channel and re-sends the calls that were in flight on it.
func (n *Node) onSecureClose(env *envelope.Envelope) {
	f, err := env.DecodeFrame()
	if err != nil {
		return
	}
	sc := f.(*envelope.SecureClose)
	if n.sec != nil {
		if !n.sec.channels.forget(sc.CID) {
			n.log.Debug("SecureClose for an unknown channel", "cid", sc.CID)
		}
		n.pend.channelClosed(sc.CID)
	}
	if n.cfg.OnSecureClose != nil {
		n.cfg.OnSecureClose(sc)
	}
}

// initiated returns the established channels this node opened, by cid, with their
// destinations.
func (cs *channels) initiated() map[string]string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make(map[string]string, len(cs.byCID))
	for cid, sl := range cs.byCID {
		select {
		case <-sl.done:
			if sl.err == nil {
				out[cid] = sl.dest
			}
		default:
		}
	}
	return out
}

// channelJanitor drops channels unused for Config.ChannelIdleTimeout, so departed peers do
// not leave channel state behind for ever. A channel this node opened is closed with a
// SecureClose to its destination (the next call opens a new one); one it accepted is just
// forgotten (the opener, if it comes back, gets a SecureClose for the unknown cid and
// re-opens). Owned by n.wg; ends with the node.
func (n *Node) channelJanitor() {
	defer n.wg.Done()
	idle := n.cfg.ChannelIdleTimeout
	t := time.NewTicker(max(min(idle/4, time.Minute), 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.expireChannels(time.Now().Add(-idle))
	}
}

// expireChannels drops the channels unused since before cutoff.
func (n *Node) expireChannels(cutoff time.Time) {
	cs := n.sec.channels
	stale := cs.table.Idle(cutoff)
	if len(stale) == 0 {
		return
	}
	mine := cs.initiated()
	n.mu.Lock()
	l := n.cur
	n.mu.Unlock()
	for _, cid := range stale {
		if dest, ok := mine[cid]; ok && l != nil && l.alive() {
			n.closeChannel(l, cid, dest, "idle")
		} else {
			cs.forget(cid)
		}
	}
	n.log.Debug("idle secure channels dropped", "count", len(stale))
}

// closeChannelsOnExit tells every destination of a channel this node opened that the channel
// is gone (SecureClose), so replicas do not keep state for a client that left, and waits
// (at most 1 s) until the writer has sent them.
func (n *Node) closeChannelsOnExit() {
	if n.sec == nil {
		return
	}
	n.mu.Lock()
	l := n.cur
	n.mu.Unlock()
	if l == nil || !l.alive() {
		return
	}
	mine := n.sec.channels.initiated()
	if len(mine) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for cid, dest := range mine {
		n.sec.channels.forget(cid)
		env, err := envelope.New(&envelope.SecureClose{CID: cid, Reason: "node closing"})
		if err != nil {
			continue
		}
		env.SID, env.TraceID, env.To = l.sid, envelope.NewID(), dest
		if err := n.sendOn(ctx, l, env); err != nil {
			n.log.Debug("SecureClose not sent on exit", "cid", cid, "err", err)
			return
		}
	}
	l.flush(ctx)
}
