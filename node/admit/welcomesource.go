package admit

import (
	"context"
	"fmt"
	"time"
)

// WelcomeTokenSource runs hello on demand and again once 2/3 of the grant's
// life has passed, so every (re)connect presents a fresh attach ticket.
// Token fits node.Config.Token. Safe for concurrent use.
type WelcomeTokenSource struct {
	w *Welcome
	r *renewer[*Grant]
}

// NewWelcomeTokenSource validates w and returns the renewing source.
func NewWelcomeTokenSource(w *Welcome) (*WelcomeTokenSource, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	s := &WelcomeTokenSource{w: w}
	s.r = newRenewer("welcome grant", w.Now, w.Timeout, func(ctx context.Context, _ time.Time) (*Grant, time.Time, error) {
		g, err := w.Hello(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		return g, g.ExpiresAt, nil
	})
	return s, nil
}

// Grant returns the current grant, running hello first when due.
func (s *WelcomeTokenSource) Grant(ctx context.Context) (*Grant, error) { return s.r.get(ctx) }

// Token returns the current attach ticket.
func (s *WelcomeTokenSource) Token(ctx context.Context) (string, error) {
	g, err := s.Grant(ctx)
	if err != nil {
		return "", err
	}
	if !g.HasAttach() {
		return "", fmt.Errorf("%w (system %s, assigned %s)", ErrNoAttachGrant, g.SystemID, g.AssignedPath)
	}
	return g.AttachToken, nil
}

// AttachURL returns the attach URL of the current grant (without the
// system id; the node appends "/<systemId>").
func (s *WelcomeTokenSource) AttachURL(ctx context.Context) (string, error) {
	g, err := s.Grant(ctx)
	if err != nil {
		return "", err
	}
	if !g.HasAttach() {
		return "", fmt.Errorf("%w (system %s)", ErrNoAttachGrant, g.SystemID)
	}
	return g.AttachURL, nil
}

// Invalidate drops the cached grant: the next call runs hello again. Call
// it when the sentinel refuses the ticket.
func (s *WelcomeTokenSource) Invalidate() { s.r.invalidate() }
