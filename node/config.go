package node

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node/admit"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/tracing"
)

// Delivery profiles (FAME_DELIVERY_PROFILE).
const (
	AtMostOnce  = "at-most-once"
	AtLeastOnce = "at-least-once"
)

// EnvelopeHook inspects or rewrites an envelope. On the outbound chain a non-nil error stops
// the send and is returned to the caller; on the inbound chain it drops the envelope.
type EnvelopeHook func(*envelope.Envelope) error

// RetryPolicy is the at-least-once re-send schedule: the n-th re-send waits
// min(BaseDelay*Factor^n, MaxDelay) plus up to Jitter.
type RetryPolicy struct {
	MaxRetries int
	BaseDelay  time.Duration
	MaxDelay   time.Duration
	Factor     float64
	Jitter     time.Duration
}

// delay returns the wait before re-send number attempt (0-based).
func (p RetryPolicy) delay(attempt int, jitter func(time.Duration) time.Duration) time.Duration {
	d := float64(p.BaseDelay)
	for i := 0; i < attempt; i++ {
		d *= p.Factor
		if d >= float64(p.MaxDelay) {
			break
		}
	}
	out := time.Duration(d)
	if p.MaxDelay > 0 && out > p.MaxDelay {
		out = p.MaxDelay
	}
	if p.Jitter > 0 && jitter != nil {
		out += jitter(p.Jitter)
	}
	return out
}

// The reference runtime's at-least-once defaults: the sender policy applies to requests, the
// receiver policy to replies an agent sends back.
var (
	DefaultSenderRetry   = RetryPolicy{MaxRetries: 5, BaseDelay: time.Second, MaxDelay: 10 * time.Second, Factor: 2.0, Jitter: 200 * time.Millisecond}
	DefaultReceiverRetry = RetryPolicy{MaxRetries: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second, Factor: 1.8, Jitter: 50 * time.Millisecond}
)

// Config is everything a Node needs. Zero values take the defaults listed on each field.
type Config struct {
	// URL is the attach URL without the system id, e.g.
	// ws://127.0.0.1:8000/fame/v1/attach/ws/downstream (FAME_DIRECT_ADMISSION_URL).
	URL string
	// SystemID is this node's id (FAME_NODE_ID); empty means a random 16-char id. The reference
	// derives a deterministic fingerprint salted by FAME_NODE_ID_SALT; a Go node's id is random
	// per process, so distinct replicas never collide and the salt is only recorded.
	SystemID string
	// IDSalt is FAME_NODE_ID_SALT, kept for diagnostics.
	IDSalt string
	// RequestedLogicals are sent as acceptedLogicals in NodeAttach: ["fame.fabric"] for an agent
	// bound exactly, ["*.fame.fabric"] for a pool replica; empty means ["*"] (a plain client).
	RequestedLogicals []string
	// SecurityProfile (FAME_SECURITY_PROFILE) and AdmissionProfile (FAME_ADMISSION_PROFILE).
	// overlay and strict-overlay make the node sign, verify and exchange keys (see the package
	// doc); strict-overlay also encrypts. Admission other than direct needs a Token.
	SecurityProfile  string
	AdmissionProfile string
	// EncryptionLevel (FAME_DEFAULT_ENCRYPTION_LEVEL: plaintext, channel or sealed) is the
	// level of the Data this node originates. Under strict-overlay it defaults to channel;
	// under overlay it is honoured too (a Go extension: the reference ignores it there, and
	// overlay TS peers refuse encrypted traffic); open and gated always send plaintext.
	EncryptionLevel string
	// Channel bounds every secure channel's lifetime (rekey after MaxAge or MaxMessages).
	Channel security.ChannelOptions
	// KeyRequestTimeout and KeyRequestAttempts bound the wait for an unknown signing key:
	// a KeyRequest is re-sent every timeout, and after the last attempt the envelopes that
	// waited are dropped (a waiting call fails with ErrUnknownKey). 5 s and 3.
	KeyRequestTimeout  time.Duration
	KeyRequestAttempts int
	// Token, when set, is offered on the WebSocket handshake as the subprotocols
	// "bearer", <token> (direct admission with a bearer JWT).
	Token func(ctx context.Context) (string, error)
	// AttachURL, when set, is asked for the attach URL (without the system id) before every
	// dial, and URL may be empty: welcome admission learns it from the welcome grant.
	AttachURL func(ctx context.Context) (string, error)
	// AttachChoices is how many different sentinels AttachURL names in turn (a list of a
	// cluster's sentinels): Connect tries that many when a dial cannot reach its sentinel,
	// before it gives up. 0 or 1: one attempt (a welcome placement still gets one more).
	AttachChoices int
	// InstanceID is NodeAttach.instanceId, the same for every attach of this Node; empty
	// means a random one. A welcome ticket is bound to the instance id of its hello.
	InstanceID string
	// HTTPClient makes the WebSocket handshake (its TLS roots matter for wss:// with the
	// dev CA, FAME_CA_CERTS); nil means the admission's client, else http.DefaultClient.
	HTTPClient *http.Client

	// Admission supplies SystemID, Token, AttachURL, InstanceID and HTTPClient (where those
	// are unset), the welcome grant's accepted logicals, and under strict-overlay the node
	// certificate (see admission.go). AdmissionSettings, used when Admission is nil, builds it
	// at Connect with admit.New, after the program has set RequestedLogicals; config.Node
	// fills it from the FAME_ADMISSION_* variables. AdmissionProfile, when set, overrides
	// AdmissionSettings.Profile, and URL overrides AdmissionSettings.URL.
	Admission         *admit.Admission
	AdmissionSettings *admit.Settings

	// Delivery is AtMostOnce (default) or AtLeastOnce; the retry policies apply to the latter.
	Delivery      string
	SenderRetry   RetryPolicy
	ReceiverRetry RetryPolicy

	// DisableFlowControl stops sending CreditUpdates for received flows (FAME_FLOW_CONTROL=0).
	// The reference sentinel stops forwarding a flow without them, so only turn it off when
	// the whole fabric runs with flow control off.
	DisableFlowControl bool
	// ShowEnvelopes prints every envelope sent and received (FAME_SHOW_ENVELOPES=true) to
	// ShowWriter (default os.Stderr).
	ShowEnvelopes bool
	ShowWriter    io.Writer

	Logger *slog.Logger
	// Tracer, when set, records a span per call and per served request and carries the W3C
	// trace context in the meta of requests and replies (package tracing; config.Tracing
	// reads OTEL_EXPORTER_OTLP_ENDPOINT). nil is off. The program owns it: it calls
	// Tracer.Shutdown after Close, which flushes the spans still batched.
	Tracer *tracing.Tracer

	AttachTimeout     time.Duration // NodeAttachAck and bind/advertise acks; default 10 s
	CallTimeout       time.Duration // default for Call/Stream without a deadline; 30 s
	HeartbeatInterval time.Duration // 15 s; the link is dead after 2 intervals without an ack
	ReconnectMin      time.Duration // 1 s
	ReconnectMax      time.Duration // 30 s
	// DrainTimeout bounds Node.Drain when its context has no deadline (FAME_DRAIN_TIMEOUT;
	// 30 s): how long a replica waits for the sentinel to move its sessions before it closes.
	DrainTimeout time.Duration
	SendQueue    int // envelopes queued per link (also bounded at 64 MiB); 1024. A full queue makes Call wait up to its context
	DedupeSize   int // recent envelope ids remembered for dedupe; 4096

	// Trust is the FAME_CA_CERTS bundle node certificates must chain to. Under strict-overlay a
	// KeyAnnounce from another node is accepted only with a certificate (x5c) chaining to it,
	// and Connect refuses to start without one. nil means the admission's (also read from
	// FAME_CA_CERTS), if any.
	Trust *x509bundle.Bundle
	// Certificate, when set, supplies the certificate chain (leaf first) for the node's
	// signing key under strict-overlay instead of the welcome admission's CA (a deployment
	// with its own CA, or tests). It is called once before the first attach and not renewed.
	Certificate func(ctx context.Context, key ed25519.PrivateKey) ([]*x509.Certificate, error)
	// Registerer, when set, gets fame_node_refusals_total{reason}; Node.Refusals has the
	// same counts either way.
	Registerer prometheus.Registerer

	// Resource bounds (each with its FAME_* variable; durations in Go syntax, e.g. 10m).
	// ChannelIdleTimeout: a secure channel unused this long is dropped and, when this node
	// opened it, closed with SecureClose (FAME_CHANNEL_IDLE_TIMEOUT, 10 min).
	ChannelIdleTimeout time.Duration
	// MaxHandlers request handlers run at once (FAME_MAX_HANDLERS, 1024); up to HandlerQueue
	// more wait (FAME_HANDLER_QUEUE, 1024); past that a request is refused with an
	// OVERLOADED nack.
	MaxHandlers  int
	HandlerQueue int
	// MaxPending bounds the calls, streams and acknowledged replies this node waits on
	// (FAME_MAX_PENDING, 65536); past it a call fails at once with ErrTooManyPending.
	MaxPending int
	// The replay guard refuses an envelope id it remembers for the same sender, and any
	// envelope whose ts is older than ReplayWindow, more than ReplayFutureSkew ahead, or older
	// than the ids it had to forget for that sender; it keeps ReplayCacheSize ids in all, at
	// most ReplayCacheSize/8 per sender (security.ReplayGuard) (FAME_REPLAY_WINDOW, 10 min;
	// FAME_REPLAY_FUTURE_SKEW, 1 min; FAME_REPLAY_CACHE_SIZE, 65536).
	ReplayWindow     time.Duration
	ReplayFutureSkew time.Duration
	ReplayCacheSize  int
	// The reply cache keeps the replies of the requests this node ran, so that a caller's
	// re-send of a request (same envelope id) whose reply was lost gets it again instead of
	// only an ack: at most ReplyCacheSize requests (4096; negative turns the cache off),
	// ReplyCacheBytes of replies (4 MiB), each for ReplyCacheTTL (2 min); FAME_REPLY_CACHE_SIZE
	// (0: off), _BYTES and _TTL set them (config.Node). A request whose replies come to more
	// than ReplyCacheBytes/16 (min 1 KiB) is remembered without them: its re-send gets a
	// REPLY_NOT_KEPT nack, as does one the cache forgot.
	ReplyCacheSize  int
	ReplyCacheBytes int
	ReplyCacheTTL   time.Duration

	// Hook chains and the SecureClose handler (see the package doc).
	Outbound      []EnvelopeHook
	Inbound       []EnvelopeHook
	OnSecureClose func(*envelope.SecureClose)
}

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("node: invalid configuration")

// Validate reports the first problem Connect would refuse c for (an ErrConfig), so that a
// program configured from its environment (config.Node) fails at start-up.
func (c *Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	if c.URL == "" && c.AttachURL == nil && !c.admissionGivesURL() {
		return fmt.Errorf("%w: no attach URL (set FAME_DIRECT_ADMISSION_URL)", ErrConfig)
	}
	if c.URL != "" && !strings.HasPrefix(c.URL, "ws://") && !strings.HasPrefix(c.URL, "wss://") {
		return fmt.Errorf("%w: attach URL %q must start with ws:// or wss://", ErrConfig, c.URL)
	}
	switch c.Delivery {
	case "", AtMostOnce, AtLeastOnce:
	default:
		return fmt.Errorf("%w: unknown delivery profile %q", ErrConfig, c.Delivery)
	}
	if _, err := security.ParseProfile(c.SecurityProfile); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.EncryptionLevel != "" {
		if _, err := security.ParseLevel(c.EncryptionLevel); err != nil {
			return fmt.Errorf("%w: FAME_DEFAULT_ENCRYPTION_LEVEL: %w", ErrConfig, err)
		}
	}
	return nil
}

// withDefaults returns a copy with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.SystemID == "" {
		c.SystemID = envelope.NewID()
	}
	if c.InstanceID == "" {
		c.InstanceID = envelope.NewID()
	}
	if len(c.RequestedLogicals) == 0 {
		c.RequestedLogicals = []string{"*"}
	}
	if c.Delivery == "" {
		c.Delivery = AtMostOnce
	}
	if c.SenderRetry == (RetryPolicy{}) {
		c.SenderRetry = DefaultSenderRetry
	}
	if c.ReceiverRetry == (RetryPolicy{}) {
		c.ReceiverRetry = DefaultReceiverRetry
	}
	if c.ShowWriter == nil {
		c.ShowWriter = os.Stderr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AttachTimeout, 10*time.Second)
	def(&c.CallTimeout, 30*time.Second)
	def(&c.HeartbeatInterval, 15*time.Second)
	def(&c.ReconnectMin, time.Second)
	def(&c.ReconnectMax, 30*time.Second)
	def(&c.DrainTimeout, 30*time.Second)
	def(&c.KeyRequestTimeout, 5*time.Second)
	if c.KeyRequestAttempts <= 0 {
		c.KeyRequestAttempts = 3
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 1024
	}
	if c.DedupeSize <= 0 {
		c.DedupeSize = 4096
	}
	def(&c.ChannelIdleTimeout, 10*time.Minute)
	def(&c.ReplayWindow, 10*time.Minute)
	def(&c.ReplayFutureSkew, time.Minute)
	if c.MaxHandlers <= 0 {
		c.MaxHandlers = 1024
	}
	if c.HandlerQueue <= 0 {
		c.HandlerQueue = 1024
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 16
	}
	if c.ReplayCacheSize <= 0 {
		c.ReplayCacheSize = 1 << 16
	}
	if c.ReplyCacheSize == 0 {
		c.ReplyCacheSize = 4096
	}
	if c.ReplyCacheBytes <= 0 {
		c.ReplyCacheBytes = 4 << 20
	}
	def(&c.ReplyCacheTTL, 2*time.Minute)
	return c
}
