package sentinel

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fame-go/fame/config"
)

// File is a sentinel configuration document in the reference's shape.
type File struct {
	Node    NodeConfig    `yaml:"node"`
	Plugins []any         `yaml:"plugins,omitempty"`
	Logging LoggingConfig `yaml:"logging,omitempty"`
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
	Extra             map[string]any   `yaml:",inline"`
}

// ListenerConfig is one entry of `listeners:`. HTTP and WebSocket listeners share one port.
type ListenerConfig struct {
	Type    string `yaml:"type"`
	Host    string `yaml:"host,omitempty"`
	Port    *int   `yaml:"port,omitempty"` // nil: default 8000; 0: any free port
	Enabled *bool  `yaml:"enabled,omitempty"`
}

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
}

// AdminConfig protects the operator endpoints.
type AdminConfig struct {
	Token string `yaml:"token,omitempty"` // bearer token for /stats, /metrics and /debug/pprof; empty: open
}

// Options is the resolved configuration the sentinel runs with.
type Options struct {
	ID                string
	Host              string
	Port              int
	RequestedLogicals []string
	SecurityProfile   string
	AdmissionProfile  string
	DeliveryProfile   string
	LoadBalancing     string
	Stickiness        bool
	StickinessLevel   string
	StickyDefaultTTL  time.Duration
	StickyMaxTTL      time.Duration
	StickyCacheMax    int
	StorageProfile    string
	StoragePath       string
	SendQueue         int
	WriteTimeout      time.Duration
	AttachTimeout     time.Duration
	PingInterval      time.Duration
	IdleTimeout       time.Duration
	LogFormat         string
	LogLevel          string
	ShowEnvelopes     bool
	Pprof             bool // serve /debug/pprof/ (FAME_PPROF=true)

	// Bounds under hostile load (limits.go, queue.go).
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
	AdminToken          string // bearer token for the admin endpoints; empty leaves them open
}

// DefaultFile is the configuration used when no file is given: the reference's sentinel
// config, so FAME_* variables work the same way.
const DefaultFile = `
node:
  type: Sentinel
  id: "${env:FAME_NODE_ID:}"
  public_url: "${env:FAME_PUBLIC_URL:}"
  listeners:
    - type: HttpListener
      host: "${env:FAME_LISTENER_HOST:0.0.0.0}"
      port: "${env:FAME_LISTENER_PORT:8000}"
    - type: WebSocketListener
      host: "${env:FAME_LISTENER_HOST:0.0.0.0}"
      port: "${env:FAME_LISTENER_PORT:8000}"
  requested_logicals: ["${env:FAME_ROOT_LOGICAL:fame.fabric}"]
  security:  {type: SecurityProfile,  profile: "${env:FAME_SECURITY_PROFILE:open}"}
  admission: {type: AdmissionProfile, profile: "${env:FAME_ADMISSION_PROFILE:none}"}
  storage:   {type: StorageProfile,   profile: "${env:FAME_STORAGE_PROFILE:memory}", path: "${env:FAME_STORAGE_PATH:}"}
  delivery:  {type: DeliveryProfile,  profile: "${env:FAME_DELIVERY_PROFILE:at-most-once}"}
  load_balancing: {type: LoadBalancingProfile, profile: "${env:FAME_LOAD_BALANCING:hrw}"}
  stickiness:
    type: AFTLoadBalancerStickinessManager
    security_level: "${env:FAME_STICKINESS_LEVEL:signed-optional}"
`

// LoadOptions reads a config file (or the built-in default when path is empty), substitutes
// the environment and applies FAME_* overrides. It returns every problem found, not the first.
func LoadOptions(path string, env config.Getenv) (Options, error) {
	var f File
	var err error
	if path == "" {
		err = config.Decode([]byte(DefaultFile), env, &f)
	} else {
		err = config.LoadFile(path, env, &f)
	}
	if err != nil {
		return Options{}, err
	}
	return f.Resolve(env)
}

// Resolve turns a parsed file into Options and validates it.
func (f *File) Resolve(env config.Getenv) (Options, error) {
	n := f.Node
	o := Options{
		ID:                n.ID,
		Host:              "0.0.0.0",
		Port:              8000,
		RequestedLogicals: n.RequestedLogicals,
		SecurityProfile:   orDefault(n.Security.Profile, "open"),
		AdmissionProfile:  orDefault(n.Admission.Profile, "none"),
		DeliveryProfile:   orDefault(n.Delivery.Profile, "at-most-once"),
		LoadBalancing:     orDefault(n.LoadBalancing.Profile, "hrw"),
		Stickiness:        true,
		StickinessLevel:   orDefault(n.Stickiness.SecurityLevel, "signed-optional"),
		StickyDefaultTTL:  time.Hour,
		StickyMaxTTL:      2 * time.Hour,
		StickyCacheMax:    100000,
		StorageProfile:    orDefault(n.Storage.Profile, "memory"),
		StoragePath:       n.Storage.Path,
		SendQueue:         orDefaultInt(n.Limits.SendQueue, 4096),
		WriteTimeout:      time.Duration(orDefaultInt(n.Limits.WriteTimeoutMs, 10000)) * time.Millisecond,
		SendQueueBytes:    orDefaultInt64(n.Limits.SendQueueBytes, 8<<20),
		GlobalQueueBytes:  n.Limits.GlobalQueueBytes,
		MaxRoutes:         orDefaultInt(n.Limits.MaxRoutes, 256),
		MaxCapabilities:   orDefaultInt(n.Limits.MaxCapabilities, 1024),
		MaxKeys:           orDefaultInt(n.Limits.MaxKeys, 64),
		MaxPending:        orDefaultInt(n.Limits.MaxPending, maxPendingPerConn),
		MaxConnections:    orDefaultInt(n.Limits.MaxConnections, 100000),
		AttachRate:        n.Limits.AttachRate,
		AttachBurst:       orDefaultInt(n.Limits.AttachBurst, 5000),
		AdminToken:        n.Admin.Token,
		AttachTimeout:     time.Duration(orDefaultInt(n.Limits.AttachTimeoutMs, 10000)) * time.Millisecond,
		PingInterval:      time.Duration(orDefaultInt(n.Limits.PingIntervalMs, 1000)) * time.Millisecond,
		IdleTimeout:       time.Duration(orDefaultInt(n.Limits.IdleTimeoutMs, 45000)) * time.Millisecond,
		LogFormat:         orDefault(f.Logging.Format, "text"),
		LogLevel:          orDefault(f.Logging.Level, "info"),
	}
	if len(o.RequestedLogicals) == 0 {
		o.RequestedLogicals = []string{"fame.fabric"}
	}
	// The slow-consumer timeout was write_timeout_ms before; that key still sets it.
	o.SlowConsumerTimeout = o.WriteTimeout
	if n.Limits.SlowConsumerTimeoutMs > 0 {
		o.SlowConsumerTimeout = time.Duration(n.Limits.SlowConsumerTimeoutMs) * time.Millisecond
	}
	if o.AttachRate == 0 {
		o.AttachRate = 1000
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
	for i, l := range n.Listeners {
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
		case "AgentHttpGatewayListener":
		default:
			problems = append(problems, fmt.Sprintf("listeners[%d]: unknown listener type %q (want HttpListener or WebSocketListener)", i, l.Type))
		}
	}
	// Variables win over the file, as in the reference.
	get := func(k string) string { v, _ := env(k); return v }
	if v := get("FAME_LISTENER_WEBSOCKET_PORT"); v != "" {
		if p, err := strconv.Atoi(v); err == nil {
			o.Port = p
		} else {
			problems = append(problems, fmt.Sprintf("FAME_LISTENER_WEBSOCKET_PORT=%q is not a port number", v))
		}
	}
	if v := get("FAME_STICKINESS"); v != "" {
		switch strings.ToLower(v) {
		case "off", "false", "0", "no", "disabled":
			o.Stickiness = false
		case "on", "true", "1", "yes", "enabled":
			o.Stickiness = true
		default:
			problems = append(problems, fmt.Sprintf("FAME_STICKINESS=%q: want on or off", v))
		}
	}
	o.ShowEnvelopes = get("FAME_SHOW_ENVELOPES") == "true"
	o.Pprof = get("FAME_PPROF") == "true"
	if v := get("FAME_LOG_FORMAT"); v != "" {
		o.LogFormat = v
	}
	if v := get("FAME_LOG_LEVEL"); v != "" {
		o.LogLevel = v
	}
	if o.StoragePath == "" {
		o.StoragePath = get("FAME_STORAGE_PATH")
	}
	problems = append(problems, o.limitsFromEnv(get)...)
	if o.GlobalQueueBytes == 0 {
		o.GlobalQueueBytes = defaultGlobalQueueBytes()
	}
	if o.StorageProfile == "memory" && o.StoragePath != "" {
		o.StorageProfile = "bbolt"
	}
	problems = append(problems, o.validate()...)
	if len(problems) > 0 {
		return o, &ConfigError{Problems: problems}
	}
	return o, nil
}

func (o *Options) validate() []string {
	var p []string
	oneOf := func(field, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		p = append(p, fmt.Sprintf("%s: %q is not one of %s", field, v, strings.Join(allowed, ", ")))
	}
	oneOf("security.profile", o.SecurityProfile, "open", "gated", "overlay", "strict-overlay")
	oneOf("admission.profile", o.AdmissionProfile, "none", "open", "direct", "welcome", "noop")
	oneOf("delivery.profile", o.DeliveryProfile, "at-most-once", "at-least-once")
	oneOf("load_balancing.profile", o.LoadBalancing, "hrw", "round_robin", "random", "least_connections")
	oneOf("stickiness.security_level", o.StickinessLevel, "strict", "signed-optional", "sid-only")
	oneOf("storage.profile", o.StorageProfile, "memory", "bbolt")
	oneOf("logging.format", o.LogFormat, "text", "json")
	if o.StorageProfile == "bbolt" && o.StoragePath == "" {
		p = append(p, "storage.profile bbolt needs storage.path (or FAME_STORAGE_PATH)")
	}
	if o.Port < 0 || o.Port > 65535 {
		p = append(p, fmt.Sprintf("port %d out of range", o.Port))
	}
	if o.ID != "" && strings.ContainsAny(o.ID, "/@ ") {
		p = append(p, fmt.Sprintf("node.id %q must not contain '/', '@' or spaces", o.ID))
	}
	if o.SendQueue < 16 {
		p = append(p, fmt.Sprintf("limits.send_queue %d is too small (min 16)", o.SendQueue))
	}
	p = append(p, o.validateLimits()...)
	if o.StickyMaxTTL < o.StickyDefaultTTL {
		p = append(p, "stickiness.max_ttl_sec is below default_ttl_sec")
	}
	return p
}

// ConfigError lists every problem found in a configuration.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
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

func orDefaultInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}
