package node

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// keyWaits holds envelopes signed with a kid this node does not know yet while a KeyRequest
// for it is out (security.md §5.5). The reader adds and resolves; the session's key loop
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
func (s *session) receive(env *envelope.Envelope) {
	n := s.n
	if n.sec == nil || exemptFromSignature(env.FrameType()) {
		n.dispatch(s, env, nil)
		return
	}
	sec, err := security.ParseSec(env.Sec)
	if err != nil {
		n.log.Warn("dropping envelope with a malformed sec header", "id", env.ID, "err", err)
		return
	}
	if sec == nil || sec.Sig == nil {
		if n.sec.profile.RequiresSignature(env.FrameType(), security.OriginUpstream) {
			s.refuse(env, codeSignatureRequired, "envelope is not signed")
			return
		}
	} else if _, ok := n.sec.keys.Get(sec.Sig.Kid); !ok {
		s.awaitKey(sec.Sig.Kid, env)
		return
	}
	s.deliverSecured(env, sec)
}

// deliverSecured decrypts, verifies and dispatches an envelope whose signing key is known.
func (s *session) deliverSecured(env *envelope.Envelope, sec *envelope.Sec) {
	n := s.n
	var ch *security.Channel
	if sec != nil && sec.Enc != nil && env.FrameType() == envelope.TypeData {
		var err error
		switch security.EncLevel(sec) {
		case security.LevelChannel:
			ch, err = n.sec.channels.table.DecryptEnvelope(env)
			if errors.Is(err, security.ErrUnknownChannel) {
				// The sender holds a channel we lost (restart, fail-over): tell it, so it
				// re-opens and re-sends instead of the reference's silent garbage delivery.
				n.log.Info("envelope on an unknown channel, closing it", "cid", sec.Enc.Kid, "from", env.ReplyTo)
				n.closeChannel(s, sec.Enc.Kid, env.ReplyTo, "unknown channel")
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
			return
		}
	}
	if sec != nil && sec.Sig != nil {
		if _, err := n.sec.keys.Verify(env, false); err != nil {
			s.refuse(env, codeSignatureFailed, err.Error())
			return
		}
	}
	// Replays: at-least-once re-sends reuse their id on purpose and are deduplicated (and
	// acknowledged again) by onData, so only the rest goes through the replay guard.
	if !(env.FrameType() == envelope.TypeData && env.RType.Has(envelope.RTypeAck)) {
		if err := n.sec.replay.Check(env.ID); err != nil {
			n.log.Warn("dropping replayed envelope", "id", env.ID, "type", env.FrameType())
			return
		}
	}
	n.dispatch(s, env, ch)
}

// refuse drops an envelope that failed a security check, answering a request with the
// reference's nack code so the caller fails fast.
func (s *session) refuse(env *envelope.Envelope, code, reason string) {
	s.n.log.Warn("refusing envelope", "id", env.ID, "type", env.FrameType(), "code", code, "reason", reason)
	if env.FrameType() == envelope.TypeData && env.ReplyTo != "" && env.CorrID != "" {
		s.n.sendNack(s, env, code, reason)
	}
}

// awaitKey queues env until kid is announced, sending the first KeyRequest.
func (s *session) awaitKey(kid string, env *envelope.Envelope) {
	s.waits.mu.Lock()
	w := s.waits.kids[kid]
	first := w == nil
	if first {
		if len(s.waits.kids) >= maxKeyWaitKids {
			s.waits.mu.Unlock()
			s.n.log.Warn("too many unknown signing keys, dropping", "kid", kid, "id", env.ID)
			return
		}
		w = &keyWait{attempts: 1, due: time.Now().Add(s.n.cfg.KeyRequestTimeout)}
		s.waits.kids[kid] = w
	}
	if len(w.envs) < maxKeyWaitEnvs {
		w.envs = append(w.envs, env)
	}
	s.waits.mu.Unlock()
	if first {
		s.requestKey(kid)
	}
}

// requestKey asks the sentinel (the key directory) for kid.
func (s *session) requestKey(kid string) {
	env, err := envelope.New(&envelope.KeyRequest{Kid: kid, PhysicalPath: s.assignedPath})
	if err != nil {
		return
	}
	env.SID, env.TraceID, env.CorrID = s.sid, envelope.NewID(), envelope.NewID()
	s.n.post(s, env)
}

// onKeyAnnounce stores announced keys and releases the envelopes that waited for them.
func (s *session) onKeyAnnounce(env *envelope.Envelope) {
	f, err := env.DecodeFrame()
	if err != nil {
		return
	}
	ka := f.(*envelope.KeyAnnounce)
	if _, err := s.n.sec.keys.AddRaw(ka.Keys, ka.PhysicalPath); err != nil {
		s.n.log.Warn("some announced keys were invalid", "path", ka.PhysicalPath, "err", err)
	}
	s.waits.mu.Lock()
	var ready []*envelope.Envelope
	for kid, w := range s.waits.kids {
		if _, ok := s.n.sec.keys.Get(kid); ok {
			ready = append(ready, w.envs...)
			delete(s.waits.kids, kid)
		}
	}
	s.waits.mu.Unlock()
	for _, e := range ready {
		sec, err := security.ParseSec(e.Sec)
		if err == nil {
			s.deliverSecured(e, sec)
		}
	}
}

// keyLoop re-sends outstanding KeyRequests and gives up after the last attempt, failing the
// calls whose replies waited. Runs only on secured sessions.
func (s *session) keyLoop() {
	defer s.wg.Done()
	iv := max(s.n.cfg.KeyRequestTimeout/5, 10*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var retry []string
		var expired []*envelope.Envelope
		s.waits.mu.Lock()
		for kid, w := range s.waits.kids {
			if now.Before(w.due) {
				continue
			}
			if w.attempts >= s.n.cfg.KeyRequestAttempts {
				expired = append(expired, w.envs...)
				delete(s.waits.kids, kid)
				continue
			}
			w.attempts++
			w.due = now.Add(s.n.cfg.KeyRequestTimeout)
			retry = append(retry, kid)
		}
		s.waits.mu.Unlock()
		for _, kid := range retry {
			s.requestKey(kid)
		}
		for _, e := range expired {
			s.n.log.Warn("signing key never announced, dropping envelope", "id", e.ID, "type", e.FrameType())
			if w := s.n.pend.byCorrID(e.CorrID); w != nil {
				w.push(event{kind: evFail, err: fmt.Errorf("%w: reply %s could not be verified after %d key requests", ErrUnknownKey, e.ID, s.n.cfg.KeyRequestAttempts)})
			}
		}
	}
}
