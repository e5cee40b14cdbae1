package admit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/fame-go/fame/envelope"
)

// Welcome configures the hello → welcome exchange with the welcome service
// (FAME_ADMISSION_PROFILE=welcome, security.md §3.3).
type Welcome struct {
	ServiceURL   string      // FAME_ADMISSION_SERVICE_URL, e.g. https://welcome/fame/v1/welcome/hello
	TokenSource  TokenSource // OAuth2 bearer for the welcome service; nil = anonymous
	SystemID     string      // this node's id; the attach ticket is bound to it
	InstanceID   string      // this process's instance id (optional)
	Logicals     []string    // requested logicals, e.g. ["*.fame.fabric"]
	Capabilities []string

	HTTPClient *http.Client
	Timeout    time.Duration
	Now        func() time.Time
}

func (w *Welcome) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Welcome) validate() error {
	u, err := url.Parse(w.ServiceURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: welcome service URL %q is not an http(s) URL", ErrConfig, w.ServiceURL)
	}
	if w.SystemID == "" {
		return fmt.Errorf("%w: welcome needs the node's system id", ErrConfig)
	}
	return nil
}

// Hello POSTs a NodeHello and returns the grant from the NodeWelcome. When
// the welcome service refuses the bearer token, the token source (if it can)
// is invalidated and the hello retried once with a fresh token: the dev
// OAuth2 server forgets its key on restart.
func (w *Welcome) Hello(ctx context.Context) (*Grant, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	g, err := w.hello(ctx)
	if inv, ok := w.TokenSource.(invalidator); ok && errors.Is(err, ErrUnauthorized) {
		inv.Invalidate()
		g, err = w.hello(ctx)
	}
	return g, err
}

func (w *Welcome) hello(ctx context.Context) (*Grant, error) {
	env, err := envelope.New(&envelope.NodeHello{
		SystemID: w.SystemID, InstanceID: w.InstanceID, Logicals: w.Logicals,
		Capabilities: w.Capabilities, SupportedTransports: []string{"websocket"},
	})
	if err != nil {
		return nil, fmt.Errorf("admit: build NodeHello: %w", err)
	}
	body, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("admit: encode NodeHello: %w", err)
	}
	hdr := http.Header{}
	if w.TokenSource != nil {
		tok, err := w.TokenSource.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("admit: hello bearer token: %w", err)
		}
		hdr.Set("Authorization", "Bearer "+tok)
	}
	out, err := post(ctx, w.HTTPClient, w.Timeout, request{
		op: "hello", url: w.ServiceURL, contentType: "application/json", body: body, header: hdr,
	})
	if err != nil {
		return nil, err
	}
	g, err := ParseWelcome(out, w.now())
	if err != nil {
		return nil, err
	}
	if g.SystemID != w.SystemID {
		// The ticket would name another node and the sentinel refuse it.
		return nil, fmt.Errorf("%w: welcome placed system %q, we are %q", ErrBadResponse, g.SystemID, w.SystemID)
	}
	return g, nil
}
