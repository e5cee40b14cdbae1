package node

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// keyWaits holds envelopes signed with a kid this node does not know yet while a KeyRequest
// for it is out (security.md §5.5). The reader adds and resolves; the link's key loop (Node.keyLoop)
// re-sends requests and finally gives up. Bounded per kid and in kids.
type keyWaits struct {
	mu   sync.Mutex
	kids map[string]*keyWait
}

type keyWait struct {
	envs     []*envelope.Envelope
	attempts int
	due      time.Time
}

const (
	maxKeyWaitKids = 256
	maxKeyWaitEnvs = 1024
)

// receive runs the security checks on one inbound envelope (reader goroutine) and hands it
// to dispatch: unsigned-but-required and forged envelopes are refused, envelopes signed
// with an unknown kid wait for a KeyAnnounce, channel payloads are decrypted.
func (n *Node) receive(l *link, env *envelope.Envelope) {
	if env.FrameType() == envelope.TypeNodeHeartbeatAck {
		if reason := n.foreignHeartbeatAck(l, env); reason != "" {
			n.refused.inc(RefusedHeartbeatAckForeign)
			n.log.Warn("heartbeat ack refused: not from our sentinel", "sid", env.SID, "to", env.To, "reason", reason)
			return
		}
	}
	if n.sec == nil || exemptFromSignature(env.FrameType()) {
		n.dispatch(l, env, nil, "")
		return
	}
	sec, err := security.ParseSec(env.Sec)
	if err != nil {
		n.log.Warn("dropping envelope with a malformed sec header", "id", env.ID, "err", err)
		n.replyRefused(env, "malformed_sec", err.Error())
		return
	}
	if sec == nil || sec.Sig == nil {
		if n.sec.profile.RequiresSignature(env.FrameType(), security.OriginUpstream) {
			n.refuse(l, env, codeSignatureRequired, "envelope is not signed")
			return
		}
	} else if k, ok := n.sec.keys.Get(sec.Sig.Kid); !ok {
		n.awaitKey(l, sec.Sig.Kid, env)
		return
	} else if k.Identity != nil && time.Now().After(k.Identity.NotAfter) && k.PhysicalPath != l.parentPath {
		// The owner renewed its certificate since we fetched the key: fetch the current x5c
		// from the sentinel (same kid, same path) instead of refusing its envelopes.
		n.sec.keys.Remove(sec.Sig.Kid)
		n.awaitKey(l, sec.Sig.Kid, env)
		return
	}
	n.deliverSecured(l, env, sec, true)
}

// deliverSecured decrypts, verifies and dispatches an envelope whose signing key is known.
// refetch: a signer certificate found expired at verification fetches the key again (as
// receive does) instead of refusing; false for envelopes released by a fetched key.
func (n *Node) deliverSecured(l *link, env *envelope.Envelope, sec *envelope.Sec, refetch bool) {
	var ch *security.Channel
	if sec != nil && sec.Enc != nil && env.FrameType() == envelope.TypeData {
		var err error
		switch security.EncLevel(sec) {
		case security.LevelChannel:
			ch, err = n.sec.channels.table.DecryptEnvelope(env)
			if errors.Is(err, security.ErrUnknownChannel) {
				// The sender holds a channel we lost (restart, fail-over): tell it, so it
				// re-opens and re-sends instead of the reference's silent garbage delivery.
				if env.CorrID != "" && n.pend.supersededOn(env.CorrID, sec.Enc.Kid) {
					// The reply to a send whose channel was closed under it (a replica drain
					// or loss): the call was re-sent over a new channel, whose reply it waits
					// for; this one cannot be read and must not fail it.
					n.log.Debug("reply on a channel closed under its call; waiting for the re-send's reply", "cid", sec.Enc.Kid, "id", env.ID)
					return
				}
				n.log.Info("envelope on an unknown channel, closing it", "cid", sec.Enc.Kid, "from", env.ReplyTo)
				n.closeChannel(l, sec.Enc.Kid, env.ReplyTo, "unknown channel")
				n.replyRefused(env, codeChannelUnknown, "sent on secure channel "+sec.Enc.Kid+" this node does not hold")
				return
			}
		default:
			if sec.Enc.Kid != n.sec.encKid {
				err = fmt.Errorf("sealed for kid %q, not ours", sec.Enc.Kid)
			} else {
				err = security.OpenEnvelope(env, n.sec.encKey.Private)
			}
		}
		if err != nil {
			n.log.Warn("dropping undecryptable envelope", "id", env.ID, "err", err)
			n.replyRefused(env, codeDecryptFailed, err.Error())
			return
		}
	}
	var signer *security.StoredKey
	if sec != nil && sec.Sig != nil {
		var err error
		if signer, err = n.sec.keys.Verify(env, false); err != nil {
			if refetch && errors.Is(err, security.ErrCertExpired) {
				// The certificate expired between receive's check and this one: the
				// owner has renewed it, fetch the current one rather than refuse.
				n.sec.keys.Remove(sec.Sig.Kid)
				n.awaitKey(l, sec.Sig.Kid, env)
				return
			}
			if k, ok := n.sec.keys.Get(sec.Sig.Kid); refetch && errors.Is(err, security.ErrSIDMismatch) && ok && k.PhysicalPath != l.parentPath {
				// Its sentinel verified it, so the key's owner has a new path: it moved to
				// another sentinel of a cluster, keeping its keys. Ask our sentinel (the key
				// directory) where the kid lives now; the envelope is checked once more with
				// that answer and refused if it still does not match.
				n.sec.keys.Remove(sec.Sig.Kid)
				n.awaitKey(l, sec.Sig.Kid, env)
				return
			}
			n.refuse(l, env, codeSignatureFailed, err.Error())
			return
		}
	}
	// Replays: the id must be new and the ts inside the window. At-least-once re-sends reuse
	// their id on purpose: one the guard has seen is not run twice; it gets the kept reply
	// again, or an ack (onResend).
	// Ids and floors are kept per sender (the verified signing key; the claimed sid for an
	// unsigned envelope), so one sender's flood or future-dated ts cannot get another's refused.
	sender := "sid:" + env.SID
	if signer != nil {
		sender = "kid:" + sec.Sig.Kid
	}
	if err := n.sec.replay.CheckFrom(sender, env.ID, envTime(env.TS)); err != nil {
		alo := env.FrameType() == envelope.TypeData && env.RType.Has(envelope.RTypeAck)
		switch {
		case errors.Is(err, security.ErrReplay) && alo:
			n.onResend(l, env, ch, sender)
		// No nack: replyTo names whoever sent the original, whose call with this id may
		// still be waiting; answering the replayer's copy would fail that call.
		case errors.Is(err, security.ErrReplay):
			n.refused.inc(RefusedReplay)
			n.log.Warn("dropping replayed envelope", "id", env.ID, "type", env.FrameType(), "sid", env.SID, "from", env.ReplyTo, "code", CodeReplay)
		default:
			n.refused.inc(RefusedStale)
			n.log.Warn("dropping stale envelope", "id", env.ID, "type", env.FrameType(), "sid", env.SID, "from", env.ReplyTo,
				"code", CodeStale, "err", err)
			n.replyRefused(env, CodeStale, err.Error())
		}
		return
	}
	if env.FrameType() == envelope.TypeKeyAnnounce {
		n.onKeyAnnounce(l, env, signer)
		return
	}
	n.dispatch(l, env, ch, sender)
}

// envTime parses an envelope ts (ISO-8601; the reference writes UTC with milliseconds and
// Z, a zone-less one is read as UTC). The zero time means missing or unreadable.
func envTime(ts string) time.Time {
	if ts == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		return t
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", ts); err == nil {
		return t
	}
	return time.Time{}
}

// foreignHeartbeatAck says why a NodeHeartbeatAck did not come from this link's sentinel
// ("" when it did). The sentinel answers our heartbeats itself, with no "to" and its own sid;
// anything else was routed here by another node, and would keep a dead link looking alive or
// change our routing epoch (a re-bind storm). A signed one must verify with the sentinel's key.
func (n *Node) foreignHeartbeatAck(l *link, env *envelope.Envelope) string {
	if env.To != "" {
		return "routed to " + env.To
	}
	if env.SID != "" && env.SID != l.parentSID && env.SID != envelope.SecureDigest(l.parentPath) {
		return "sid is not the sentinel's"
	}
	if n.sec == nil || len(env.Sec) == 0 {
		return ""
	}
	sec, err := security.ParseSec(env.Sec)
	if err != nil {
		return "malformed sec header"
	}
	if sec == nil || sec.Sig == nil {
		return ""
	}
	k, err := n.sec.keys.Verify(env, false)
	if err != nil {
		return "signature: " + err.Error()
	}
	if k.PhysicalPath != l.parentPath {
		return "signed by " + k.PhysicalPath
	}
	return ""
}

// refuse drops an envelope that failed a security check, answering a request with the
// reference's nack code so the caller fails fast.
func (n *Node) refuse(l *link, env *envelope.Envelope, code, reason string) {
	n.log.Warn("refusing envelope", "id", env.ID, "type", env.FrameType(), "code", code, "reason", reason)
	if env.FrameType() == envelope.TypeData && env.ReplyTo != "" && env.CorrID != "" {
		n.sendNack(l, env, code, reason)
	}
	n.replyRefused(env, code, reason)
}

// replyRefused fails the pending call env answers, when env is a reply this node drops: a
// refused stream item would otherwise leave a silent gap (the items after it still arrive
// and the stream ends normally), and a refused reply a call waiting for its timeout. The
// nack refuse sends goes to the replying node, not to our caller.
func (n *Node) replyRefused(env *envelope.Envelope, code, reason string) {
	if env.FrameType() != envelope.TypeData || env.CorrID == "" {
		return
	}
	if participant, _, _ := envelope.SplitInbox(env.To); !strings.HasPrefix(participant, "__rpc__") {
		return
	}
	if w := n.pend.byCorrID(env.CorrID); w != nil {
		w.push(event{kind: evFail, err: fmt.Errorf("%w: %s (%s): %s", ErrReplyRefused, env.ID, code, reason)})
	}
}

// awaitKey queues env until kid is announced, sending the first KeyRequest.
func (n *Node) awaitKey(l *link, kid string, env *envelope.Envelope) {
	l.waits.mu.Lock()
	w := l.waits.kids[kid]
	first := w == nil
	if first {
		if len(l.waits.kids) >= maxKeyWaitKids {
			l.waits.mu.Unlock()
			n.log.Warn("too many unknown signing keys, dropping", "kid", kid, "id", env.ID)
			n.replyRefused(env, codeKeyWaitFull, "too many unknown signing keys")
			return
		}
		w = &keyWait{attempts: 1, due: time.Now().Add(n.cfg.KeyRequestTimeout)}
		l.waits.kids[kid] = w
	}
	full := len(w.envs) >= maxKeyWaitEnvs
	if !full {
		w.envs = append(w.envs, env)
	}
	l.waits.mu.Unlock()
	if full {
		n.log.Warn("too many envelopes wait for a signing key, dropping", "kid", kid, "id", env.ID)
		n.replyRefused(env, codeKeyWaitFull, "too many envelopes wait for signing key "+kid)
	}
	if first {
		n.requestKey(l, kid)
	}
}

// requestKey asks the sentinel (the key directory) for kid.
func (n *Node) requestKey(l *link, kid string) {
	env, err := envelope.New(&envelope.KeyRequest{Kid: kid, PhysicalPath: l.assignedPath})
	if err != nil {
		return
	}
	env.SID, env.TraceID, env.CorrID = l.sid, envelope.NewID(), envelope.NewID()
	n.post(l, env)
}

// onKeyAnnounce stores announced keys (see admitKeys) and releases the envelopes that waited
// for them. signer is the key that verified the announce (nil when unsigned).
func (n *Node) onKeyAnnounce(l *link, env *envelope.Envelope, signer *security.StoredKey) {
	f, err := env.DecodeFrame()
	if err != nil {
		return
	}
	ka := f.(*envelope.KeyAnnounce)
	if reason, why := n.admitKeys(l, ka, signer); reason != "" {
		from := "(unsigned)"
		if signer != nil {
			from = signer.PhysicalPath
		}
		n.refused.inc(reason)
		n.log.Warn("KeyAnnounce refused", "from", from, "sid", env.SID, "physical_path", ka.PhysicalPath,
			"reason", reason, "detail", why)
		// Answer only the announcer itself, never an address it named elsewhere.
		if a, err := envelope.ParseAddress(env.ReplyTo); err == nil && signer != nil && a.Path != "" && envelope.UnderPath(a.Path, signer.PhysicalPath) {
			n.sendNack(l, env, CodeKeyAnnounceRefused, reason+": "+why)
		}
		return
	}
	l.waits.mu.Lock()
	var ready []*envelope.Envelope
	for kid, w := range l.waits.kids {
		if _, ok := n.sec.keys.Get(kid); ok {
			ready = append(ready, w.envs...)
			delete(l.waits.kids, kid)
		}
	}
	l.waits.mu.Unlock()
	for _, e := range ready {
		sec, err := security.ParseSec(e.Sec)
		if err == nil {
			n.deliverSecured(l, e, sec, false)
		}
	}
}

// keyLoop re-sends outstanding KeyRequests and gives up after the last attempt, failing the
// calls whose replies waited. Runs on every link of a secured node (linkDeps.loops), for the link's lifetime.
func (n *Node) keyLoop(l *link) {
	iv := max(n.cfg.KeyRequestTimeout/5, 10*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-l.done():
			return
		case <-t.C:
		}
		now := time.Now()
		var retry []string
		var expired []*envelope.Envelope
		l.waits.mu.Lock()
		for kid, w := range l.waits.kids {
			if now.Before(w.due) {
				continue
			}
			if w.attempts >= n.cfg.KeyRequestAttempts {
				expired = append(expired, w.envs...)
				delete(l.waits.kids, kid)
				continue
			}
			w.attempts++
			w.due = now.Add(n.cfg.KeyRequestTimeout)
			retry = append(retry, kid)
		}
		l.waits.mu.Unlock()
		for _, kid := range retry {
			n.requestKey(l, kid)
		}
		for _, e := range expired {
			n.log.Warn("signing key never announced, dropping envelope", "id", e.ID, "type", e.FrameType())
			if w := n.pend.byCorrID(e.CorrID); w != nil {
				w.push(event{kind: evFail, err: fmt.Errorf("%w: reply %s could not be verified after %d key requests", ErrUnknownKey, e.ID, n.cfg.KeyRequestAttempts)})
			}
		}
	}
}

// admitKeys checks and stores the keys of a KeyAnnounce; it returns the refusal reason (a
// Refused* constant) and a detail, or "" when the keys were stored. The rules:
//
//   - Our sentinel (the announce is signed by a key of its path) is the key directory: it may
//     announce keys for any path (its answers to our KeyRequests). Any other node may only
//     announce keys for its own path or a path below it; otherwise one signed peer could
//     register its key under a replica's path and sign as that replica.
//   - A kid already stored under another path is never re-assigned: a forged announce
//     reusing a replica's kid would otherwise replace its key and make every envelope it
//     signs fail verification.
//   - Under strict-overlay every signing key must carry a certificate (x5c) chaining to the
//     trust bundle with the sid of the path (the key store checks the chain), and a node's
//     own announce must be signed by such a certified key.
//
// Keys are checked all together before any is stored. JWKs that do not parse are skipped,
// as the reference does.
func (n *Node) admitKeys(l *link, ka *envelope.KeyAnnounce, signer *security.StoredKey) (reason, detail string) {
	ns := n.sec
	if signer == nil {
		return RefusedKeyAnnounceUnsigned, "a KeyAnnounce must be signed"
	}
	fromSentinel := signer.PhysicalPath == l.parentPath
	if !fromSentinel && !envelope.UnderPath(ka.PhysicalPath, signer.PhysicalPath) {
		return RefusedKeyAnnounceForeignPath, fmt.Sprintf("%s may not announce keys for %s", signer.PhysicalPath, ka.PhysicalPath)
	}
	strict := ns.profile.RequireCertSIDMatch()
	if strict && !fromSentinel && signer.Identity == nil {
		return RefusedKeyAnnounceNoCert, "the announcing key has no certificate chaining to the trust bundle"
	}
	var jwks []security.JWK
	for i, raw := range ka.Keys {
		j, err := security.ParseJWK(raw)
		if err != nil {
			n.log.Warn("skipping invalid announced key", "index", i, "path", ka.PhysicalPath, "err", err)
			continue
		}
		if prev, ok := ns.keys.Get(j.Kid); ok && prev.PhysicalPath != ka.PhysicalPath {
			return RefusedKeyAnnounceKidTaken, fmt.Sprintf("kid %s belongs to %s", j.Kid, prev.PhysicalPath)
		}
		if strict && j.Use == "sig" && len(j.X5C) == 0 && ka.PhysicalPath != l.parentPath {
			return RefusedKeyAnnounceNoCert, fmt.Sprintf("signing key %s has no x5c certificate chain", j.Kid)
		}
		if ka.PhysicalPath == l.parentPath {
			j.X5C = nil // the sentinel's own keys: see dial
		}
		jwks = append(jwks, j)
	}
	scratch := security.NewKeyStore(security.KeyStoreOptions{Trust: ns.trust})
	for _, j := range jwks {
		if err := scratch.Add(j, ka.PhysicalPath); err != nil {
			if strict {
				return RefusedKeyAnnounceNoCert, err.Error()
			}
			return RefusedKeyAnnounceInvalid, err.Error()
		}
	}
	for _, j := range jwks {
		if err := ns.keys.Add(j, ka.PhysicalPath); err != nil {
			return RefusedKeyAnnounceInvalid, err.Error()
		}
	}
	return "", ""
}
