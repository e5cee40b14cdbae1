package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/fame-go/fame/gateway"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/sentinel"
)

// gatewaySettings are the FAME_GATEWAY* variables (env only; off by default).
type gatewaySettings struct {
	enabled   bool
	origins   []string
	bodyLimit int64
}

func gatewayFromEnv(getenv func(string) string) (gatewaySettings, error) {
	var g gatewaySettings
	switch strings.ToLower(strings.TrimSpace(getenv("FAME_GATEWAY"))) {
	case "", "off", "false", "0":
	case "on", "true", "1":
		g.enabled = true
	default:
		return g, fmt.Errorf("FAME_GATEWAY must be on or off, got %q", getenv("FAME_GATEWAY"))
	}
	for _, o := range strings.Split(getenv("FAME_GATEWAY_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			g.origins = append(g.origins, o)
		}
	}
	if v := strings.TrimSpace(getenv("FAME_GATEWAY_BODY_LIMIT")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return g, fmt.Errorf("FAME_GATEWAY_BODY_LIMIT must be a positive byte count, got %q", v)
		}
		g.bodyLimit = n
	}
	return g, nil
}

// newGateway builds the HTTP gateway for a sentinel with opts: each HTTP caller's requests
// go through a node that attaches to this sentinel over loopback with the caller's bearer
// token, so the sentinel's own admission checks it and the envelopes carry the caller's
// identity. A token is required whenever the admission profile requires one of nodes.
// listenAddr is filled once the sentinel listens (callers only connect after that).
func newGateway(opts sentinel.Options, gs gatewaySettings, listenAddr *atomic.Value, log *slog.Logger) (*gateway.Gateway, error) {
	if opts.SecurityProfile == security.ProfileStrictOverlay {
		return nil, fmt.Errorf("FAME_GATEWAY: not supported under %s (a gateway caller node would need a certificate)", opts.SecurityProfile)
	}
	requireToken := opts.AdmissionProfile == sentinel.AdmissionDirect || opts.AdmissionProfile == sentinel.AdmissionWelcome
	return gateway.New(gateway.Options{
		BodyLimit:      gs.bodyLimit,
		AllowedOrigins: gs.origins,
		RequireToken:   requireToken,
		Logger:         log.With("component", "gateway"),
		Connect: func(ctx context.Context, tok string) (gateway.Caller, error) {
			addr, _ := listenAddr.Load().(string)
			if addr == "" {
				return nil, fmt.Errorf("gateway: the sentinel is not listening yet")
			}
			cfg := node.Config{
				URL:             "ws://" + addr + "/fame/v1/attach/ws/downstream",
				SecurityProfile: string(opts.SecurityProfile),
				Delivery:        string(opts.DeliveryProfile),
				Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			if tok != "" {
				cfg.Token = func(context.Context) (string, error) { return tok, nil }
			}
			return node.Connect(ctx, cfg)
		},
	})
}

// loopbackAddr is the address the gateway's caller nodes dial for a listener on l.
func loopbackAddr(l net.Listener) string {
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return net.JoinHostPort("127.0.0.1", port)
}
