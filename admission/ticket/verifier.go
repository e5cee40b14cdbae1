package ticket

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fame-go/fame/admission/token"
)

// Errors for attach-binding failures (signature/claim failures are
// *token.Error values).
var (
	ErrSystemMismatch   = errors.New("ticket: system_id does not match the attaching node")
	ErrInstanceMismatch = errors.New("ticket: instance_id does not match the attaching node")
	ErrPathMismatch     = errors.New("ticket: assigned_path is not under the sentinel path")
)

// AttachInfo is what the sentinel knows about an attach attempt.
type AttachInfo struct {
	SystemID     string // NodeAttach.systemId (must equal the URL's system id)
	InstanceID   string // NodeAttach.instanceId
	SentinelPath string // the sentinel's own physical path, e.g. /Cb8WVCC4ML5RsFM
}

// Ticket is a verified attach ticket.
type Ticket struct {
	Claims
	Raw string
}

// VerifierConfig configures a TicketVerifier.
type VerifierConfig struct {
	Keys   token.KeySource // welcome JWKS (FAME_JWKS_URL) or static keys
	Issuer string          // FAME_JWT_TRUSTED_ISSUER, e.g. https://welcome/fame/welcome
	Leeway time.Duration
	// Timeout bounds one Verify call including a JWKS fetch; default 5 s.
	Timeout time.Duration
	// IgnoreInstanceID skips the instance_id check (for peers that reuse a
	// ticket across process restarts).
	IgnoreInstanceID bool
	// Replay, if set, makes tickets one-shot.
	Replay *token.ReplayGuard
	Now    func() time.Time
}

func (c *VerifierConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// TicketVerifier checks attach tickets for a sentinel.
type TicketVerifier struct {
	cfg VerifierConfig
}

// NewTicketVerifier validates cfg.
func NewTicketVerifier(cfg VerifierConfig) (*TicketVerifier, error) {
	if _, err := token.NewVerifier(token.Config{Keys: cfg.Keys, Issuer: cfg.Issuer}); err != nil {
		return nil, fmt.Errorf("ticket verifier: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &TicketVerifier{cfg: cfg}, nil
}

// Verify checks raw for an attach described by attach.
func (v *TicketVerifier) Verify(raw string, attach AttachInfo) (*Ticket, error) {
	ctx, cancel := context.WithTimeout(context.Background(), v.cfg.Timeout)
	defer cancel()
	return v.VerifyContext(ctx, raw, attach)
}

// VerifyContext is Verify with a caller-supplied context.
func (v *TicketVerifier) VerifyContext(ctx context.Context, raw string, attach AttachInfo) (*Ticket, error) {
	// The audience depends on the sentinel, so the token verifier is built
	// per call; it is a few small allocations next to an Ed25519 check.
	tv, err := token.NewVerifier(token.Config{
		Keys: v.cfg.Keys, Issuer: v.cfg.Issuer, Audience: attach.SentinelPath,
		Leeway: v.cfg.Leeway, Now: v.cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("ticket verifier: %w", err)
	}
	if attach.SentinelPath == "" {
		return nil, &token.Error{Reason: token.ReasonWrongAudience, Err: errors.New("sentinel path unknown")}
	}
	t := &Ticket{Raw: raw}
	if err := tv.VerifyInto(ctx, raw, &t.Claims); err != nil {
		return nil, err
	}
	if t.SystemID == "" || t.SystemID != attach.SystemID {
		return nil, fmt.Errorf("%w: ticket %q, attach %q", ErrSystemMismatch, t.SystemID, attach.SystemID)
	}
	if !v.cfg.IgnoreInstanceID && t.InstanceID != "" && attach.InstanceID != "" && t.InstanceID != attach.InstanceID {
		return nil, fmt.Errorf("%w: ticket %q, attach %q", ErrInstanceMismatch, t.InstanceID, attach.InstanceID)
	}
	if t.AssignedPath != "" && t.AssignedPath != attach.SentinelPath+"/"+t.SystemID {
		return nil, fmt.Errorf("%w: %q under %q", ErrPathMismatch, t.AssignedPath, attach.SentinelPath)
	}
	// Replay is checked last so a ticket refused for another reason is not
	// burnt.
	if v.cfg.Replay != nil {
		if t.ID == "" {
			return nil, &token.Error{Reason: token.ReasonMalformed, Err: errors.New("no jti on a one-shot ticket")}
		}
		if !v.cfg.Replay.Use(t.ID, t.ExpiresAt.Add(v.cfg.Leeway), v.cfg.now()) {
			return nil, &token.Error{Reason: token.ReasonReplayed, Err: fmt.Errorf("ticket %q already used", t.ID)}
		}
	}
	return t, nil
}
