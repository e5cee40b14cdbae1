package sentinel

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fame-go/fame/cluster/clustercfg"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/security/aft"
	"github.com/fame-go/fame/tracing"
)

// File is a sentinel configuration document in the reference's shape.
type File struct {
	Node    NodeConfig    `yaml:"node"`
	Plugins []any         `yaml:"plugins,omitempty"`
	Logging LoggingConfig `yaml:"logging,omitempty"`
	// Cluster is the `cluster:` block (config.ClusterFile): several sentinels as one (issue
	// #15, docs/cluster.md). Load resolves it into Options.Cluster.
	Cluster *config.ClusterFile `yaml:"cluster,omitempty"`
	Tracing TracingConfig       `yaml:"tracing,omitempty"`
}

// TracingConfig is the `tracing:` block (OpenTelemetry over OTLP/HTTP; off without an
// endpoint). The OTEL_* variables win over it.
type TracingConfig struct {
	Endpoint       string   `yaml:"endpoint,omitempty"`        // base URL; spans go to <endpoint>/v1/traces
	TracesEndpoint string   `yaml:"traces_endpoint,omitempty"` // full traces URL; wins over endpoint
	SampleRatio    *float64 `yaml:"sample_ratio,omitempty"`    // (0, 1], default 1
	ServiceName    string   `yaml:"service_name,omitempty"`    // default fame
}

// LoggingConfig selects the log format and level.
type LoggingConfig struct {
	Format string `yaml:"format,omitempty"` // text (default) or json
	Level  string `yaml:"level,omitempty"`
}

// NodeConfig is the `node:` block.
type NodeConfig struct {
	Type              string           `yaml:"type,omitempty"`
	ID                string           `yaml:"id,omitempty"`
	PublicURL         string           `yaml:"public_url,omitempty"`
	Listeners         []ListenerConfig `yaml:"listeners,omitempty"`
	RequestedLogicals []string         `yaml:"requested_logicals,omitempty"`
	Security          ProfileRef       `yaml:"security,omitempty"`
	Admission         ProfileRef       `yaml:"admission,omitempty"`
	Storage           StorageConfig    `yaml:"storage,omitempty"`
	Delivery          ProfileRef       `yaml:"delivery,omitempty"`
	Stickiness        StickinessConfig `yaml:"stickiness,omitempty"`
	LoadBalancing     ProfileRef       `yaml:"load_balancing,omitempty"`
	IdentityPolicy    ProfileRef       `yaml:"identity_policy,omitempty"`
	Telemetry         map[string]any   `yaml:"telemetry,omitempty"`
	Limits            LimitsConfig     `yaml:"limits,omitempty"`
	Admin             AdminConfig      `yaml:"admin,omitempty"`
	// DrainTimeout bounds a graceful drain (Go duration, e.g. "30s"; drain.go).
	DrainTimeout string         `yaml:"drain_timeout,omitempty"`
	Extra        map[string]any `yaml:",inline"`
}

// ListenerConfig is one entry of `listeners:`. HTTP and WebSocket listeners share one port;
// so does the HTTP gateway (type AgentHttpGatewayListener, the reference's name), which is on
// when its entry is present and not `enabled: false`.
type ListenerConfig struct {
	Type    string `yaml:"type"`
	Host    string `yaml:"host,omitempty"`
	Port    *int   `yaml:"port,omitempty"` // nil: default 8000; 0: any free port
	Enabled *bool  `yaml:"enabled,omitempty"`

	// AgentHttpGatewayListener only (refused on another type).
	AllowedOrigins []string             `yaml:"allowed_origins,omitempty"` // CORS origins; none: CORS off
	Limits         *GatewayLimitsConfig `yaml:"limits,omitempty"`
	// WelcomeURL is the welcome service's hello URL that admits each HTTP caller under
	// strict-overlay (FAME_GATEWAY_WELCOME_URL, else FAME_ADMISSION_SERVICE_URL, win).
	WelcomeURL string `yaml:"welcome_url,omitempty"`
}

// GatewayLimitsConfig is the gateway listener's `limits:`. The reference spells its keys in
// camelCase (bodyLimitBytes); both spellings are read.
type GatewayLimitsConfig struct {
	BodyLimitBytes      int64 `yaml:"body_limit_bytes,omitempty"`
	BodyLimitBytesCamel int64 `yaml:"bodyLimitBytes,omitempty"`
}

// GatewayListenerType is the listener type of the HTTP gateway.
const GatewayListenerType = "AgentHttpGatewayListener"

// ProfileRef is the reference's `{type: XProfile, profile: name}` block.
type ProfileRef struct {
	Type    string `yaml:"type,omitempty"`
	Profile string `yaml:"profile,omitempty"`
}

// StorageConfig selects where bindings persist.
type StorageConfig struct {
	Type    string `yaml:"type,omitempty"`
	Profile string `yaml:"profile,omitempty"` // memory (default) or bbolt
	Path    string `yaml:"path,omitempty"`
}

// StickinessConfig is the reference's stickiness block.
type StickinessConfig struct {
	Type          string `yaml:"type,omitempty"`
	Enabled       *bool  `yaml:"enabled,omitempty"`
	SecurityLevel string `yaml:"security_level,omitempty"`
	DefaultTTLSec int    `yaml:"default_ttl_sec,omitempty"`
	MaxTTLSec     int    `yaml:"max_ttl_sec,omitempty"`
	CacheMax      int    `yaml:"cache_max,omitempty"`
	ClientEcho    bool   `yaml:"client_echo,omitempty"`
}

// LimitsConfig bounds per-connection resources.
type LimitsConfig struct {
	SendQueue       int `yaml:"send_queue,omitempty"`       // envelopes queued per connection
	WriteTimeoutMs  int `yaml:"write_timeout_ms,omitempty"` // a write stuck longer disconnects the peer
	AttachTimeoutMs int `yaml:"attach_timeout_ms,omitempty"`
	PingIntervalMs  int `yaml:"ping_interval_ms,omitempty"` // liveness probe of serving nodes; a peer that misses two is dropped
	IdleTimeoutMs   int `yaml:"idle_timeout_ms,omitempty"`  // a peer silent this long is dropped (peers heartbeat every 15 s)

	// Bounds under hostile load (see limits.go). Zero means the default.
	SendQueueBytes        int64   `yaml:"send_queue_bytes,omitempty"`         // bytes queued per connection (8 MiB)
	GlobalQueueBytes      int64   `yaml:"global_queue_bytes,omitempty"`       // bytes queued across all connections (GOMEMLIMIT/4, else 1 GiB)
	SlowConsumerTimeoutMs int     `yaml:"slow_consumer_timeout_ms,omitempty"` // a peer that takes nothing for this long is cut (10 s)
	MaxRoutes             int     `yaml:"max_routes,omitempty"`               // addresses (exact and pool) one connection may bind (256)
	MaxCapabilities       int     `yaml:"max_capabilities,omitempty"`         // capability entries per connection (1,024)
	MaxKeys               int     `yaml:"max_keys,omitempty"`                 // keys one connection may announce (64)
	MaxPending            int     `yaml:"max_pending,omitempty"`              // requests awaiting a reply per connection (65,536)
	MaxConnections        int     `yaml:"max_connections,omitempty"`          // open WebSocket connections (100,000)
	AttachRate            float64 `yaml:"attach_rate,omitempty"`              // attach attempts per second per remote address (1,000)
	AttachBurst           int     `yaml:"attach_burst,omitempty"`             // burst of the above (5,000)
	AttachRateLoopback    *bool   `yaml:"attach_rate_loopback,omitempty"`     // also rate-limit loopback addresses (false)

	// Rate limits on the calls started per caller identity and per target address (off).
	Rate RateLimitsConfig `yaml:"rate,omitempty"`
}

// RateLimitsConfig is limits.rate (see ratelimit.go):
//
//	rate:
//	  per_identity: {rate: 100, burst: 200, overrides: {"spiffe://naylence.fame/nodes/x": {rate: 10}}}
//	  per_address:  {overrides: {"math@fame.fabric": {rate: 500, burst: 1000}}}
//	  max_entries: 65536
type RateLimitsConfig struct {
	PerIdentity RateRuleConfig `yaml:"per_identity,omitempty"` // keyed by SPIFFE ID, else token/ticket subject, else system id
	PerAddress  RateRuleConfig `yaml:"per_address,omitempty"`  // keyed by the envelope's to address
	MaxEntries  int            `yaml:"max_entries,omitempty"`  // buckets per rule made from its default (65,536; LRU)
}

// RateRuleConfig is one rule: rate (calls per second, 0: unlimited), burst (0: one second's
// worth) for every key, and overrides for named keys (rate 0 there exempts the key).
type RateRuleConfig struct {
	Rate      float64                   `yaml:"rate,omitempty"`
	Burst     int                       `yaml:"burst,omitempty"`
	Overrides map[string]RateSpecConfig `yaml:"overrides,omitempty"`
}

// RateSpecConfig is the bucket of one override.
type RateSpecConfig struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst,omitempty"`
}

func (r RateRuleConfig) rule() RateRule {
	out := RateRule{Default: RateSpec{Rate: r.Rate, Burst: r.Burst}}
	if len(r.Overrides) > 0 {
		out.Overrides = make(map[string]RateSpec, len(r.Overrides))
		for k, v := range r.Overrides {
			out.Overrides[k] = RateSpec{Rate: v.Rate, Burst: v.Burst}
		}
	}
	return out
}

// AdminConfig protects the operator endpoints.
type AdminConfig struct {
	Token string `yaml:"token,omitempty"` // bearer token for /stats, /metrics and /debug/pprof; empty: open
}

// Options is the resolved configuration the sentinel runs with. It is grouped by concern;
// the groups are embedded, so o.Port, o.MaxRoutes and so on read as before. LoadOptions (or
// Resolve) builds it from a file and the FAME_* variables; a program may also fill it itself.
type Options struct {
	ID                string
	RequestedLogicals []string
	ListenOptions
	ProfileOptions
	StickinessOptions
	StorageOptions
	LimitOptions
	AdminOptions
	LogOptions

	// Cluster is the cluster membership (the `cluster:` block and FAME_CLUSTER_*); the zero
	// Config means a single sentinel. Load fills it; the program opens the membership
	// (cluster.Open) and hands it to New with WithCluster. Restart-only.
	Cluster clustercfg.Config
	// TrustBundle is the CA bundle node certificates must chain to (a PEM file path or inline
	// PEM, FAME_CA_CERTS); required under strict-overlay.
	TrustBundle string
	// Admission are the settings of the direct and welcome admission profiles.
	Admission AdmissionOptions
	// Gateway configures the HTTP gateway that `fame sentinel` mounts on this sentinel's
	// listener (package gateway); New does not read it.
	Gateway GatewayOptions
	// Tracing is where spans go (the `tracing:` block and the OTEL_* variables); the zero
	// value is off. The program sets the tracer up (tracing.Setup) and passes WithTracer:
	// New does not read this.
	Tracing tracing.Config
}

// ListenOptions is where the sentinel listens.
type ListenOptions struct {
	Host string
	Port int
}

// Profile types: each is one of its constants (validate refuses anything else).
type (
	AdmissionProfile     string
	DeliveryProfile      string
	LoadBalancingProfile string
	StorageProfile       string
)

const (
	AdmissionNone    AdmissionProfile = "none"
	AdmissionOpen    AdmissionProfile = "open"
	AdmissionNoop    AdmissionProfile = "noop"
	AdmissionDirect  AdmissionProfile = "direct"
	AdmissionWelcome AdmissionProfile = "welcome"

	AtMostOnce  DeliveryProfile = "at-most-once"
	AtLeastOnce DeliveryProfile = "at-least-once"

	LoadBalancingHRW              LoadBalancingProfile = "hrw"
	LoadBalancingRoundRobin       LoadBalancingProfile = "round_robin"
	LoadBalancingRandom           LoadBalancingProfile = "random"
	LoadBalancingLeastConnections LoadBalancingProfile = "least_connections"

	StorageMemory StorageProfile = "memory"
	StorageBbolt  StorageProfile = "bbolt"
)

// The values each profile may take, in the order messages list them.
var (
	securityProfiles      = []security.Profile{security.ProfileOpen, security.ProfileGated, security.ProfileOverlay, security.ProfileStrictOverlay}
	admissionProfiles     = []AdmissionProfile{AdmissionNone, AdmissionOpen, AdmissionDirect, AdmissionWelcome, AdmissionNoop}
	deliveryProfiles      = []DeliveryProfile{AtMostOnce, AtLeastOnce}
	loadBalancingProfiles = []LoadBalancingProfile{LoadBalancingHRW, LoadBalancingRoundRobin, LoadBalancingRandom, LoadBalancingLeastConnections}
	stickinessLevels      = []aft.Level{aft.LevelStrict, aft.LevelSignedOptional, aft.LevelSIDOnly}
	storageProfiles       = []StorageProfile{StorageMemory, StorageBbolt}
)

// ProfileOptions are the reference's profile choices.
type ProfileOptions struct {
	SecurityProfile  security.Profile
	AdmissionProfile AdmissionProfile
	DeliveryProfile  DeliveryProfile
	LoadBalancing    LoadBalancingProfile
}

// StickinessOptions configure AFT stickiness.
type StickinessOptions struct {
	Stickiness       bool
	StickinessLevel  aft.Level
	StickyDefaultTTL time.Duration
	StickyMaxTTL     time.Duration
	StickyCacheMax   int
}

// StorageOptions say where bindings persist.
type StorageOptions struct {
	StorageProfile StorageProfile
	StoragePath    string
}

// LimitOptions bound per-connection and sentinel-wide resources (limits.go; the send queue, internal/wsengine.Queue).
type LimitOptions struct {
	SendQueue     int
	WriteTimeout  time.Duration
	AttachTimeout time.Duration
	PingInterval  time.Duration
	IdleTimeout   time.Duration

	// Bounds under hostile load.
	SendQueueBytes      int64
	GlobalQueueBytes    int64
	SlowConsumerTimeout time.Duration
	MaxRoutes           int
	MaxCapabilities     int
	MaxKeys             int
	MaxPending          int
	MaxConnections      int
	AttachRate          float64
	AttachBurst         int
	AttachRateLoopback  bool

	// DrainTimeout is how long a graceful drain waits for the replies of the calls in flight
	// before it nacks them and closes every connection (drain.go).
	DrainTimeout time.Duration

	// RateLimits bound the calls a caller identity may start, and a target address may take,
	// per second (ratelimit.go); off by default.
	RateLimits RateLimitOptions
}

// GatewayOptions are the HTTP gateway's settings (all restart-only).
type GatewayOptions struct {
	Enabled        bool
	AllowedOrigins []string // CORS origins allowed (scheme://host[:port]); none: CORS off
	BodyLimit      int64    // largest request body in bytes; 0: the gateway's default (1 MiB)
	// WelcomeURL is the welcome hello URL that admits each HTTP caller under strict-overlay:
	// the caller's bearer token is its hello credential, and its node gets a certificate
	// of its own from the CA the welcome grant names (cmd/fame gateway.go).
	WelcomeURL string
}

// AdminOptions guard the operator endpoints.
type AdminOptions struct {
	AdminToken string // bearer token for the admin endpoints; empty leaves them open
	Pprof      bool   // serve /debug/pprof/
}

// LogOptions select the log output.
type LogOptions struct {
	LogFormat     string
	LogLevel      string
	ShowEnvelopes bool
}

// AdmissionOptions are the settings of the direct (OAuth2 access tokens) and welcome
// (attach tickets) admission profiles; see admission.go.
type AdmissionOptions struct {
	Issuer   string // the OAuth2 issuer (direct) or the welcome service's ticket issuer
	JWKSURL  string // empty: <Issuer>/.well-known/jwks.json
	Audience string // direct: the token audience; empty: the sentinel's physical path
	// TrustedClientScope exempts a token from BindSubject (direct; default node.trusted).
	TrustedClientScope string
	// BindSubject makes a direct token's subject the only system id it may attach as.
	BindSubject bool
	// Grants (ParseGrants syntax) and GrantsFile (one grant per line) bind each direct
	// token's subject to system ids and logicals.
	Grants     string
	GrantsFile string
}

// DefaultFile is the configuration used when no file is given (config.SentinelDefaultFile).
const DefaultFile = config.SentinelDefaultFile

// LoadOptions reads a config file (or the built-in default when path is empty), substitutes
// the environment and applies FAME_* overrides. It returns every problem found, not the first.
func LoadOptions(path string, env config.Getenv) (Options, error) {
	o, _, err := Load(path, env)
	return o, err
}

// Load is LoadOptions that also returns the unknown keys the file has but that were ignored
// (a misspelt known key is an error instead), for `fame validate` and the start-up log.
//
// Every problem of the file is reported in one *ConfigError: the fatal unknown keys (with
// their lines; errors.As finds the *config.UnknownKeysError through it), every mistyped value,
// every invalid setting and every FAME_* variable that does not parse. Only a file that is not
// YAML at all stops at its first syntax error. `fame validate` and a hot reload (reload.go)
// use this same function, so they refuse exactly the same files.
func Load(path string, env config.Getenv) (Options, []config.UnknownKey, error) {
	var f File
	var ignored []config.UnknownKey
	var unknown *config.UnknownKeysError
	var err error
	if path == "" {
		ignored, unknown, err = config.DecodeAll([]byte(DefaultFile), env, &f)
	} else {
		ignored, unknown, err = config.ReadAll(path, env, &f)
	}
	var yte *yaml.TypeError
	if err != nil && !errors.As(err, &yte) {
		// Not YAML, unreadable, or a ${env:...} that cannot be substituted: nothing to go on.
		if path != "" {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return Options{}, ignored, err
	}
	var problems []string
	if unknown != nil {
		for _, k := range unknown.Keys {
			problems = append(problems, k.String())
		}
	}
	if yte != nil {
		problems = append(problems, yte.Errors...)
	}
	o, rerr := f.Resolve(env)
	var ce *ConfigError
	if errors.As(rerr, &ce) {
		problems = append(problems, ce.Problems...)
	} else if rerr != nil {
		problems = append(problems, rerr.Error())
	}
	// Problems count even when nothing enables the cluster: FAME_CLUSTER_NAME or _ROUTES set
	// alone must be refused with the reason, not ignored.
	if cc, cprobs := config.ClusterConfig(f.Cluster, env, o.ID, o.StoragePath); cc.Enabled() || f.Cluster != nil || len(cprobs) > 0 {
		problems = append(problems, cprobs...)
		if o.ID == "" {
			problems = append(problems, "cluster: a clustered sentinel needs a fixed id (node.id or FAME_NODE_ID): it is its NATS server name and the first segment of its peers' paths")
		}
		o.Cluster = cc
	}
	if len(problems) > 0 {
		return o, ignored, &ConfigError{Problems: problems, File: path, Unknown: unknown, Incomplete: unknown != nil || yte != nil}
	}
	return o, ignored, nil
}

// Resolve turns a parsed file into Options, applying the FAME_* variables of env, and
// validates it.
func (f *File) Resolve(env config.Getenv) (Options, error) {
	return f.ResolveEnv(config.SentinelFromEnv(env))
}

// ResolveEnv is Resolve with the variables already read.
func (f *File) ResolveEnv(e config.SentinelEnv) (Options, error) {
	n := f.Node
	o := Options{
		ID:                n.ID,
		RequestedLogicals: n.RequestedLogicals,
		ListenOptions:     ListenOptions{Host: config.DefaultHost, Port: config.DefaultPort},
		ProfileOptions: ProfileOptions{
			SecurityProfile:  security.Profile(orDefault(n.Security.Profile, config.DefaultSecurityProfile)),
			AdmissionProfile: AdmissionProfile(orDefault(n.Admission.Profile, config.DefaultAdmissionProfile)),
			DeliveryProfile:  DeliveryProfile(orDefault(n.Delivery.Profile, config.DefaultDeliveryProfile)),
			LoadBalancing:    LoadBalancingProfile(orDefault(n.LoadBalancing.Profile, config.DefaultLoadBalancingProfile)),
		},
		StickinessOptions: StickinessOptions{
			Stickiness:       true,
			StickinessLevel:  aft.Level(orDefault(n.Stickiness.SecurityLevel, config.DefaultStickinessLevel)),
			StickyDefaultTTL: config.DefaultStickyTTL,
			StickyMaxTTL:     config.DefaultStickyMaxTTL,
			StickyCacheMax:   config.DefaultStickyCacheMax,
		},
		StorageOptions: StorageOptions{
			StorageProfile: StorageProfile(orDefault(n.Storage.Profile, config.DefaultStorageProfile)),
			StoragePath:    n.Storage.Path,
		},
		LimitOptions: LimitOptions{
			SendQueue:        orDefaultInt(n.Limits.SendQueue, config.DefaultSendQueue),
			WriteTimeout:     orDefaultMs(n.Limits.WriteTimeoutMs, config.DefaultWriteTimeout),
			AttachTimeout:    orDefaultMs(n.Limits.AttachTimeoutMs, config.DefaultAttachTimeout),
			PingInterval:     orDefaultMs(n.Limits.PingIntervalMs, config.DefaultPingInterval),
			IdleTimeout:      orDefaultMs(n.Limits.IdleTimeoutMs, config.DefaultIdleTimeout),
			SendQueueBytes:   orDefaultInt64(n.Limits.SendQueueBytes, config.DefaultSendQueueBytes),
			GlobalQueueBytes: n.Limits.GlobalQueueBytes,
			MaxRoutes:        orDefaultInt(n.Limits.MaxRoutes, config.DefaultMaxRoutes),
			MaxCapabilities:  orDefaultInt(n.Limits.MaxCapabilities, config.DefaultMaxCapabilities),
			MaxKeys:          orDefaultInt(n.Limits.MaxKeys, config.DefaultMaxKeys),
			MaxPending:       orDefaultInt(n.Limits.MaxPending, config.DefaultMaxPending),
			MaxConnections:   orDefaultInt(n.Limits.MaxConnections, config.DefaultMaxConnections),
			AttachRate:       n.Limits.AttachRate,
			AttachBurst:      orDefaultInt(n.Limits.AttachBurst, config.DefaultAttachBurst),
			DrainTimeout:     config.DefaultDrainTimeout,
			RateLimits: RateLimitOptions{PerIdentity: n.Limits.Rate.PerIdentity.rule(),
				PerAddress: n.Limits.Rate.PerAddress.rule(), MaxEntries: n.Limits.Rate.MaxEntries},
		},
		AdminOptions: AdminOptions{AdminToken: n.Admin.Token},
		LogOptions: LogOptions{
			LogFormat: orDefault(f.Logging.Format, config.DefaultLogFormat),
			LogLevel:  orDefault(f.Logging.Level, config.DefaultLogLevel),
		},
	}
	if len(o.RequestedLogicals) == 0 {
		o.RequestedLogicals = []string{config.DefaultRootLogical}
	}
	// The slow-consumer timeout was write_timeout_ms before; that key still sets it.
	o.SlowConsumerTimeout = o.WriteTimeout
	if n.Limits.SlowConsumerTimeoutMs > 0 {
		o.SlowConsumerTimeout = time.Duration(n.Limits.SlowConsumerTimeoutMs) * time.Millisecond
	}
	if o.AttachRate == 0 {
		o.AttachRate = config.DefaultAttachRate
	}
	if n.Limits.AttachRateLoopback != nil {
		o.AttachRateLoopback = *n.Limits.AttachRateLoopback
	}
	if n.Stickiness.Enabled != nil {
		o.Stickiness = *n.Stickiness.Enabled
	}
	if n.Stickiness.DefaultTTLSec > 0 {
		o.StickyDefaultTTL = time.Duration(n.Stickiness.DefaultTTLSec) * time.Second
	}
	if n.Stickiness.MaxTTLSec > 0 {
		o.StickyMaxTTL = time.Duration(n.Stickiness.MaxTTLSec) * time.Second
	}
	if n.Stickiness.CacheMax > 0 {
		o.StickyCacheMax = n.Stickiness.CacheMax
	}
	var problems []string
	if n.DrainTimeout != "" {
		if d, err := time.ParseDuration(n.DrainTimeout); err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("drain_timeout: %q is not a positive duration (e.g. 30s)", n.DrainTimeout))
		} else {
			o.DrainTimeout = d
		}
	}
	for i, l := range n.Listeners {
		if l.Type != GatewayListenerType && (len(l.AllowedOrigins) > 0 || l.Limits != nil || l.WelcomeURL != "") {
			problems = append(problems, fmt.Sprintf("listeners[%d]: allowed_origins, limits and welcome_url belong to a %s entry, not %s", i, GatewayListenerType, l.Type))
		}
		if l.Enabled != nil && !*l.Enabled {
			continue
		}
		switch l.Type {
		case "HttpListener", "WebSocketListener":
			if l.Port != nil {
				if *l.Port < 0 || *l.Port > 65535 {
					problems = append(problems, fmt.Sprintf("listeners[%d]: port %d out of range 0-65535", i, *l.Port))
				}
				o.Port = *l.Port
			}
			if l.Host != "" {
				o.Host = l.Host
			}
		case GatewayListenerType:
			o.Gateway.Enabled = true
			o.Gateway.AllowedOrigins = l.AllowedOrigins
			o.Gateway.WelcomeURL = l.WelcomeURL
			if lim := l.Limits; lim != nil {
				if lim.BodyLimitBytes != 0 && lim.BodyLimitBytesCamel != 0 && lim.BodyLimitBytes != lim.BodyLimitBytesCamel {
					problems = append(problems, fmt.Sprintf("listeners[%d]: limits.body_limit_bytes %d and bodyLimitBytes %d disagree", i, lim.BodyLimitBytes, lim.BodyLimitBytesCamel))
				}
				o.Gateway.BodyLimit = lim.BodyLimitBytesCamel
				if lim.BodyLimitBytes != 0 {
					o.Gateway.BodyLimit = lim.BodyLimitBytes
				}
			}
		default:
			problems = append(problems, fmt.Sprintf("listeners[%d]: unknown listener type %q (want HttpListener, WebSocketListener or %s)", i, l.Type, GatewayListenerType))
		}
	}
	for i, l := range n.Listeners {
		// The gateway is served on the sentinel's own listener: a port or host of its own
		// would be a listener that does not exist, so it is refused rather than ignored.
		if l.Type != GatewayListenerType || (l.Enabled != nil && !*l.Enabled) {
			continue
		}
		if l.Port != nil && *l.Port != o.Port {
			problems = append(problems, fmt.Sprintf("listeners[%d]: the gateway is served on the sentinel's port %d; port %d is not supported", i, o.Port, *l.Port))
		}
		if l.Host != "" && l.Host != o.Host {
			problems = append(problems, fmt.Sprintf("listeners[%d]: the gateway is served on the sentinel's host %q; host %q is not supported", i, o.Host, l.Host))
		}
	}
	// Variables win over the file, as in the reference.
	problems = append(problems, e.Problems...)
	o.applyEnv(e)
	o.Tracing = tracing.Config{Endpoint: f.Tracing.Endpoint, TracesEndpoint: f.Tracing.TracesEndpoint,
		ServiceName: f.Tracing.ServiceName}
	if f.Tracing.SampleRatio != nil {
		o.Tracing.SampleRatio = *f.Tracing.SampleRatio
	}
	var terr error
	if o.Tracing, terr = e.Tracing.Apply(o.Tracing); terr != nil {
		problems = append(problems, "tracing: "+terr.Error())
	}
	if o.GlobalQueueBytes == 0 {
		o.GlobalQueueBytes = defaultGlobalQueueBytes()
	}
	if o.StorageProfile == StorageMemory && o.StoragePath != "" {
		o.StorageProfile = StorageBbolt
	}
	problems = append(problems, o.validate()...)
	if len(problems) > 0 {
		return o, &ConfigError{Problems: problems}
	}
	return o, nil
}

// applyEnv lays the Override and EnvOnly variables over the file's values.
func (o *Options) applyEnv(e config.SentinelEnv) {
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set64 := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&o.Port, e.Port)
	if e.Stickiness != nil {
		o.Stickiness = *e.Stickiness
	}
	o.ShowEnvelopes = e.ShowEnvelopes
	o.Pprof = e.Pprof
	if e.LogFormat != "" {
		o.LogFormat = e.LogFormat
	}
	if e.LogLevel != "" {
		o.LogLevel = e.LogLevel
	}
	if o.StoragePath == "" {
		o.StoragePath = e.StoragePath
	}
	set(&o.SendQueue, e.SendQueue)
	set64(&o.SendQueueBytes, e.SendQueueBytes)
	set64(&o.GlobalQueueBytes, e.GlobalQueueBytes)
	if e.SlowConsumerTimeout != nil && *e.SlowConsumerTimeout > 0 {
		o.SlowConsumerTimeout = time.Duration(*e.SlowConsumerTimeout) * time.Millisecond
	}
	set(&o.MaxRoutes, e.MaxRoutes)
	set(&o.MaxCapabilities, e.MaxCapabilities)
	set(&o.MaxKeys, e.MaxKeys)
	set(&o.MaxPending, e.MaxPending)
	set(&o.MaxConnections, e.MaxConnections)
	if e.AttachRate != nil {
		o.AttachRate = *e.AttachRate
	}
	set(&o.AttachBurst, e.AttachBurst)
	if e.AttachRateLoopback != nil {
		o.AttachRateLoopback = *e.AttachRateLoopback
	}
	if e.AdminToken != "" {
		o.AdminToken = e.AdminToken
	}
	if e.RateIdentity != nil {
		o.RateLimits.PerIdentity.Default.Rate = *e.RateIdentity
	}
	set(&o.RateLimits.PerIdentity.Default.Burst, e.RateIdentityBurst)
	if e.RateAddress != nil {
		o.RateLimits.PerAddress.Default.Rate = *e.RateAddress
	}
	set(&o.RateLimits.PerAddress.Default.Burst, e.RateAddressBurst)
	if e.DrainTimeout != nil {
		o.DrainTimeout = *e.DrainTimeout
	}
	if e.Gateway != nil {
		o.Gateway.Enabled = *e.Gateway
	}
	if e.GatewayOrigins != "" {
		o.Gateway.AllowedOrigins = nil
		for _, origin := range strings.Split(e.GatewayOrigins, ",") {
			if origin = strings.TrimSpace(origin); origin != "" {
				o.Gateway.AllowedOrigins = append(o.Gateway.AllowedOrigins, origin)
			}
		}
	}
	set64(&o.Gateway.BodyLimit, e.GatewayBodyLimit)
	if e.GatewayWelcomeURL != "" {
		o.Gateway.WelcomeURL = e.GatewayWelcomeURL
	}
	o.TrustBundle = e.TrustBundle
	a := e.Admission
	o.Admission = AdmissionOptions{Issuer: a.Issuer, JWKSURL: a.JWKSURL, Audience: a.Audience,
		TrustedClientScope: a.TrustedClientScope, BindSubject: a.EnforceTokenSubject, Grants: a.Grants, GrantsFile: a.GrantsFile}
}

func (o *Options) validate() []string {
	var p []string
	p = appendOneOf(p, "security.profile", o.SecurityProfile, securityProfiles)
	p = appendOneOf(p, "admission.profile", o.AdmissionProfile, admissionProfiles)
	p = appendOneOf(p, "delivery.profile", o.DeliveryProfile, deliveryProfiles)
	p = appendOneOf(p, "load_balancing.profile", o.LoadBalancing, loadBalancingProfiles)
	p = appendOneOf(p, "stickiness.security_level", o.StickinessLevel, stickinessLevels)
	p = appendOneOf(p, "storage.profile", o.StorageProfile, storageProfiles)
	p = appendOneOf(p, "logging.format", o.LogFormat, []string{"text", "json"})
	if _, err := ParseLogLevel(o.LogLevel); err != nil {
		p = append(p, err.Error())
	}
	if o.StorageProfile == StorageBbolt && o.StoragePath == "" {
		p = append(p, "storage.profile bbolt needs storage.path (or FAME_STORAGE_PATH)")
	}
	if o.Port < 0 || o.Port > 65535 {
		p = append(p, fmt.Sprintf("port %d out of range", o.Port))
	}
	if o.ID != "" && strings.ContainsAny(o.ID, "/@ ") {
		p = append(p, fmt.Sprintf("node.id %q must not contain '/', '@' or spaces", o.ID))
	}
	if o.SendQueue < config.MinSendQueue {
		p = append(p, fmt.Sprintf("limits.send_queue %d is too small (min %d)", o.SendQueue, config.MinSendQueue))
	}
	p = append(p, o.validateLimits()...)
	if o.StickyMaxTTL < o.StickyDefaultTTL {
		p = append(p, "stickiness.max_ttl_sec is below default_ttl_sec")
	}
	return append(p, o.Gateway.validate(o.SecurityProfile, o.AdmissionProfile)...)
}

// validate checks the gateway's settings (whether or not it is on: a wrong origin is wrong).
func (g GatewayOptions) validate(profile security.Profile, admission AdmissionProfile) []string {
	var p []string
	if g.Enabled && profile == security.ProfileStrictOverlay {
		// Each HTTP caller's node needs a certificate of its own, which only a welcome grant
		// gives it (cmd/fame gateway.go): without welcome admission there is no way to one.
		if admission != AdmissionWelcome {
			p = append(p, fmt.Sprintf("gateway (AgentHttpGatewayListener, FAME_GATEWAY) under strict-overlay needs welcome admission (FAME_ADMISSION_PROFILE=welcome), not %q: each caller is admitted and certified as a node of its own", admission))
		} else if g.WelcomeURL == "" {
			p = append(p, "gateway (AgentHttpGatewayListener, FAME_GATEWAY) under strict-overlay needs the welcome hello URL its callers are admitted by: welcome_url, FAME_GATEWAY_WELCOME_URL or FAME_ADMISSION_SERVICE_URL")
		}
	}
	if g.WelcomeURL != "" {
		if u, err := url.Parse(g.WelcomeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p = append(p, fmt.Sprintf("gateway welcome_url (FAME_GATEWAY_WELCOME_URL): %q is not an http(s) URL", g.WelcomeURL))
		}
	}
	if g.BodyLimit < 0 {
		p = append(p, fmt.Sprintf("gateway limits.body_limit_bytes (FAME_GATEWAY_BODY_LIMIT): %d is negative", g.BodyLimit))
	}
	for _, origin := range g.AllowedOrigins {
		if err := checkOrigin(origin); err != nil {
			p = append(p, "gateway allowed_origins (FAME_GATEWAY_ALLOWED_ORIGINS): "+err.Error())
		}
	}
	return p
}

// checkOrigin accepts what a browser sends as Origin: scheme://host[:port], nothing else
// (the gateway compares origins exactly, so a path or a wildcard would never match).
func checkOrigin(origin string) error {
	u, err := url.Parse(origin)
	switch {
	case origin == "*":
		return fmt.Errorf("%q: wildcards are not supported; name each origin", origin)
	case err != nil:
		return fmt.Errorf("%q: %v", origin, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.User != nil,
		u.Path != "", u.RawQuery != "", u.Fragment != "", origin != u.Scheme+"://"+u.Host:
		return fmt.Errorf("%q is not an origin (scheme://host[:port], http or https, no path)", origin)
	}
	return nil
}

// appendOneOf adds a problem when v is not one of allowed.
func appendOneOf[T ~string](p []string, field string, v T, allowed []T) []string {
	if slices.Contains(allowed, v) {
		return p
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return append(p, fmt.Sprintf("%s: %q is not one of %s", field, v, strings.Join(names, ", ")))
}

// ConfigError lists every problem found in a configuration.
type ConfigError struct {
	Problems []string
	// File is the file the problems are in ("" for the built-in default file or options).
	File string
	// Unknown holds the fatal unknown keys among Problems, if any; Unwrap returns it, so
	// errors.As(err, **config.UnknownKeysError) and errors.Is(err, config.ErrUnknownKey) hold.
	Unknown *config.UnknownKeysError
	// Incomplete: some of the file could not be read (unknown keys or mistyped values), so the
	// Options returned with the error are not what the file says. Without it they are, but
	// for the invalid settings, and a reload can still name the restart-only keys they change.
	Incomplete bool
}

func (e *ConfigError) Error() string {
	where := "invalid configuration"
	if e.File != "" {
		where = e.File + ": " + where
	}
	return where + ":\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Unwrap returns the unknown-keys error (nil when there is none).
func (e *ConfigError) Unwrap() error {
	if e.Unknown == nil {
		return nil
	}
	return e.Unknown
}

// ErrConfig matches any *ConfigError with errors.Is.
var ErrConfig = errors.New("invalid configuration")

func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func orDefaultInt64(v, d int64) int64 {
	if v == 0 {
		return d
	}
	return v
}

func orDefaultMs(ms int, d time.Duration) time.Duration {
	if ms == 0 {
		return d
	}
	return time.Duration(ms) * time.Millisecond
}

func orDefaultInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}
