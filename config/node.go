package config

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/node/admit"
	"github.com/fame-go/fame/security"
)

// Node reads the FAME_* variables a reference node reads into a node.Config (see Vars,
// applies "node"), from the process environment: the Go SDK's counterpart of a reference
// node configured by its environment. FAME_REQUESTED_LOGICALS (comma separated) is a Go
// addition; programs usually set RequestedLogicals themselves.
func Node() (node.Config, error) { return NodeFrom(OSEnv) }

// NodeFrom is Node reading through env.
func NodeFrom(env Getenv) (node.Config, error) {
	e := &vars{env: env}
	adm := AdmitSettings(env)
	c := node.Config{
		URL:               e.str("FAME_DIRECT_ADMISSION_URL"),
		SystemID:          e.str("FAME_NODE_ID"),
		IDSalt:            e.str("FAME_NODE_ID_SALT"),
		SecurityProfile:   orStr(e.str("FAME_SECURITY_PROFILE"), string(security.ProfileOpen)),
		EncryptionLevel:   e.str("FAME_DEFAULT_ENCRYPTION_LEVEL"),
		AdmissionProfile:  orStr(e.str("FAME_ADMISSION_PROFILE"), admit.ProfileDirect),
		Delivery:          orStr(e.str("FAME_DELIVERY_PROFILE"), node.AtMostOnce),
		SenderRetry:       node.DefaultSenderRetry,
		ReceiverRetry:     node.DefaultReceiverRetry,
		AdmissionSettings: &adm,
		RequestedLogicals: splitList(e.str("FAME_REQUESTED_LOGICALS")),
	}
	// A comma-separated list of attach URLs is the sentinels of one cluster: the node dials
	// the first, and every later dial (a reconnect after its sentinel went away) the next one
	// in turn, so it re-attaches to another member of the cluster.
	if urls := splitList(unquote(strings.TrimSpace(c.URL))); len(urls) > 1 {
		for _, u := range urls {
			if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
				e.problems = append(e.problems, fmt.Sprintf("FAME_DIRECT_ADMISSION_URL: %q in the list must start with ws:// or wss://", u))
			}
		}
		c.URL = urls[0]
		c.AttachURL = rotateURLs(urls)
		c.AttachChoices = len(urls)
	}
	if d := e.duration("FAME_DRAIN_TIMEOUT"); d != nil {
		c.DrainTimeout = *d
	}
	if n := e.integer("FAME_REPLY_CACHE_SIZE"); n != nil {
		c.ReplyCacheSize = *n
		if *n == 0 {
			c.ReplyCacheSize = -1 // 0 here means off; the Config's zero value is the default
		}
	}
	if n := e.integer("FAME_REPLY_CACHE_BYTES"); n != nil {
		c.ReplyCacheBytes = *n
	}
	if d := e.duration("FAME_REPLY_CACHE_TTL"); d != nil {
		c.ReplyCacheTTL = *d
	}
	if b := e.boolean("FAME_FLOW_CONTROL"); b != nil {
		c.DisableFlowControl = !*b
	}
	if b := e.boolean("FAME_SHOW_ENVELOPES"); b != nil {
		c.ShowEnvelopes = *b
	}
	if len(e.problems) > 0 {
		return c, fmt.Errorf("%w: %s", node.ErrConfig, strings.Join(e.problems, "; "))
	}
	for _, p := range []*node.RetryPolicy{&c.SenderRetry, &c.ReceiverRetry} {
		if err := retryFromEnv(e, p); err != nil {
			return c, err
		}
	}
	if v := e.str("FAME_CA_CERTS"); v != "" {
		b, err := security.LoadTrustBundle(v)
		if err != nil {
			return c, fmt.Errorf("%w: %w", node.ErrConfig, err)
		}
		c.Trust = b
	}
	if err := nodeLimitsFromEnv(e, &c); err != nil {
		return c, err
	}
	// Connect validates too; checking here reports a bad environment before the program
	// does anything else, as the reference does at start-up.
	return c, c.Validate()
}

// AdmitSettings reads a node's admission settings (FAME_ADMISSION_PROFILE and the variables
// of its profile; see package node/admit).
func AdmitSettings(env Getenv) admit.Settings {
	e := &vars{env: env}
	return admit.Settings{
		Profile:      e.str("FAME_ADMISSION_PROFILE"),
		URL:          e.str("FAME_DIRECT_ADMISSION_URL"),
		ServiceURL:   e.str("FAME_ADMISSION_SERVICE_URL"),
		TokenURL:     e.str("FAME_ADMISSION_TOKEN_URL"),
		ClientID:     e.str("FAME_ADMISSION_CLIENT_ID"),
		ClientSecret: e.str("FAME_ADMISSION_CLIENT_SECRET"),
		Audience:     e.str("FAME_JWT_AUDIENCE"),
		CACerts:      e.str("FAME_CA_CERTS"),
		NodeID:       e.str("FAME_NODE_ID"),
		Logicals:     splitList(unquote(strings.TrimSpace(e.str("FAME_REQUESTED_LOGICALS")))),
	}
}

// Admit builds a node's admission from the environment (admit.New over AdmitSettings).
func Admit(env Getenv, o admit.Options) (*admit.Admission, error) {
	return admit.New(AdmitSettings(env), o)
}

// MapEnv is a Getenv over a map, for programs and tests that configure from a map.
func MapEnv(m map[string]string) Getenv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// nodeLimitsFromEnv reads the node's resource bounds (see node.Config).
func nodeLimitsFromEnv(e *vars, c *node.Config) error {
	for _, d := range []struct {
		k   string
		dst *time.Duration
	}{{"FAME_CHANNEL_IDLE_TIMEOUT", &c.ChannelIdleTimeout}, {"FAME_REPLAY_WINDOW", &c.ReplayWindow}, {"FAME_REPLAY_FUTURE_SKEW", &c.ReplayFutureSkew}} {
		if v := e.str(d.k); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return fmt.Errorf("%w: %s=%q is not a positive duration (e.g. 10m)", node.ErrConfig, d.k, v)
			}
			*d.dst = x
		}
	}
	for _, i := range []struct {
		k   string
		dst *int
	}{{"FAME_MAX_HANDLERS", &c.MaxHandlers}, {"FAME_HANDLER_QUEUE", &c.HandlerQueue}, {"FAME_MAX_PENDING", &c.MaxPending}, {"FAME_REPLAY_CACHE_SIZE", &c.ReplayCacheSize}} {
		if v := e.str(i.k); v != "" {
			x, err := strconv.Atoi(v)
			if err != nil || x <= 0 {
				return fmt.Errorf("%w: %s=%q is not a positive integer", node.ErrConfig, i.k, v)
			}
			*i.dst = x
		}
	}
	return nil
}

// retryFromEnv reads the at-least-once re-send schedule; each variable applies to both the
// sender and the receiver policy, as in the reference.
func retryFromEnv(e *vars, p *node.RetryPolicy) error {
	intVar := func(k string, dst *int) error {
		if v := e.str(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: %s=%q is not a non-negative integer", node.ErrConfig, k, v)
			}
			*dst = n
		}
		return nil
	}
	msVar := func(k string, dst *time.Duration) error {
		n := -1
		if err := intVar(k, &n); err != nil {
			return err
		}
		if n >= 0 {
			*dst = time.Duration(n) * time.Millisecond
		}
		return nil
	}
	err := errors.Join(
		intVar("FAME_DELIVERY_MAX_RETRIES", &p.MaxRetries),
		msVar("FAME_DELIVERY_BASE_DELAY_MS", &p.BaseDelay),
		msVar("FAME_DELIVERY_MAX_DELAY_MS", &p.MaxDelay),
		msVar("FAME_DELIVERY_JITTER_MS", &p.Jitter),
	)
	if err != nil {
		return err
	}
	if v := e.str("FAME_DELIVERY_BACKOFF_FACTOR"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 1 {
			return fmt.Errorf("%w: FAME_DELIVERY_BACKOFF_FACTOR=%q is not a number >= 1", node.ErrConfig, v)
		}
		p.Factor = f
	}
	return nil
}

func orStr(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// rotateURLs is an attach URL source over urls: the first on the first dial, then the next
// one on every dial after it, round and round.
func rotateURLs(urls []string) func(context.Context) (string, error) {
	var next atomic.Uint64
	return func(context.Context) (string, error) {
		return urls[(next.Add(1)-1)%uint64(len(urls))], nil
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}
