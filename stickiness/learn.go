package stickiness

import (
	"time"

	"github.com/fame-go/fame/security/aft"
)

// LearnAFT handles an AFT found on an envelope coming up from a replica
// (ExtractAFT on its meta): it verifies the token at the table's level with
// the envelope's sid as the expected replica sid and, when valid, pins the
// token's client_sid to sourceReplica (the route the envelope came from).
// The binding's idle TTL is the larger of DefaultTTL and the token's
// remaining lifetime, capped at MaxTTL. Refusals are counted by reason and
// returned as *AFTError; the envelope itself should still be forwarded.
// A valid token without client_sid (reference unsigned tokens) binds nothing.
func (t *Table) LearnAFT(token, envelopeSID, sourceReplica string, keys aft.KeyLookup, now time.Time) error {
	return t.LearnAFTConfirmed(token, envelopeSID, sourceReplica, keys, now, nil)
}

// LearnAFTConfirmed is LearnAFT with a check of the caller's between verification and
// binding: confirm sees the verified claims (the same parse that binds) and, by returning an
// error, stops the binding; that error is returned as is. A nil confirm confirms everything.
func (t *Table) LearnAFTConfirmed(token, envelopeSID, sourceReplica string, keys aft.KeyLookup, now time.Time, confirm func(aft.Claims) error) error {
	if !t.cfg.Enabled {
		return nil
	}
	c, err := aft.Verify(token, envelopeSID, t.cfg.SecurityLevel, keys, now)
	if err != nil {
		t.refusedMu.Lock()
		t.refused[aft.ReasonOf(err)]++
		t.refusedMu.Unlock()
		return err
	}
	if confirm != nil {
		if err := confirm(c); err != nil {
			return err
		}
	}
	t.aftVerified.Add(1) // verified and confirmed: what the table acts on
	if c.ClientSID == "" {
		t.aftNoClient.Add(1)
		return nil
	}
	ttl := time.Unix(c.Exp, 0).Sub(now)
	if def := t.ttls.Load().def; ttl < def {
		ttl = def
	}
	t.Bind(c.ClientSID, sourceReplica, ttl)
	return nil
}
