package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/fame-go/fame/cluster/clustercfg"
	"github.com/fame-go/fame/internal/envx"
)

// How a FAME_* variable relates to the sentinel's YAML file.
type Mode int

const (
	// Override: the variable wins over the file's key.
	Override Mode = iota
	// Template: the built-in default file reads the variable with ${env:NAME:default}; in a
	// file of your own, reference it the same way (the reference's convention), or set the key.
	Template
	// EnvOnly: no YAML key; only the variable sets it.
	EnvOnly
)

// Var is one FAME_* variable fame-go reads. Vars is the single list: README's variable
// table is generated from it (EnvTable), and a test checks that every FAME_* name in config/
// and cmd/ is listed here and every listed name is read.
type Var struct {
	Name    string
	Applies string // sentinel, node (the Go SDK, Node), or cli (a fame subcommand's flag default)
	Mode    Mode
	Key     string // the YAML key (sentinel file) for Override and Template
	Default string
	Meaning string
}

// Vars lists every FAME_* variable of the sentinel, the Go SDK and the fame command. The
// admission services (fame oauth2, welcome, ca) read theirs in their packages
// (admission/oauth2, admission/welcome, admission/ca), documented there.
var Vars = []Var{
	// The sentinel's built-in default file.
	{"FAME_NODE_ID", "sentinel, node", Template, "node.id", "", "fixed system id (unset: a random one); a sentinel needs it for persisted bindings and welcome admission"},
	{"FAME_PUBLIC_URL", "sentinel", Template, "node.public_url", "", "URL the sentinel advertises"},
	{"FAME_LISTENER_HOST", "sentinel", Template, "node.listeners[].host", DefaultHost, "address to listen on"},
	{"FAME_LISTENER_PORT", "sentinel", Template, "node.listeners[].port", strconv.Itoa(DefaultPort), "port to listen on (0: any free port)"},
	{"FAME_ROOT_LOGICAL", "sentinel", Template, "node.requested_logicals", DefaultRootLogical, "logical the sentinel serves"},
	{"FAME_SECURITY_PROFILE", "sentinel, node", Template, "node.security.profile", DefaultSecurityProfile + " (node: open)", "open, gated, overlay or strict-overlay"},
	{"FAME_ADMISSION_PROFILE", "sentinel, node", Template, "node.admission.profile", DefaultAdmissionProfile + " (node: direct)", "none, open, noop, direct or welcome"},
	{"FAME_STORAGE_PROFILE", "sentinel", Template, "node.storage.profile", DefaultStorageProfile, "memory or bbolt"},
	{"FAME_STORAGE_PATH", "sentinel", Template, "node.storage.path", "", "bbolt file for bindings; also used when a file leaves storage.path empty"},
	{"FAME_DELIVERY_PROFILE", "sentinel, node", Template, "node.delivery.profile", DefaultDeliveryProfile, "at-most-once or at-least-once"},
	{"FAME_LOAD_BALANCING", "sentinel", Template, "node.load_balancing.profile", DefaultLoadBalancingProfile, "hrw, round_robin, random or least_connections"},
	{"FAME_STICKINESS_LEVEL", "sentinel", Template, "node.stickiness.security_level", DefaultStickinessLevel, "strict, signed-optional or sid-only"},

	// Sentinel variables that win over the file.
	{"FAME_LISTENER_WEBSOCKET_PORT", "sentinel", Override, "node.listeners[].port", "", "port of every listener"},
	{"FAME_STICKINESS", "sentinel", Override, "node.stickiness.enabled", "on", "on or off"},
	{"FAME_LOG_FORMAT", "sentinel", Override, "logging.format", DefaultLogFormat, "text or json"},
	{"FAME_LOG_LEVEL", "sentinel, cli", Override, "logging.level", DefaultLogLevel, "debug, info, warn or error"},
	{"FAME_SEND_QUEUE", "sentinel", Override, "node.limits.send_queue", strconv.Itoa(DefaultSendQueue), "envelopes queued per connection"},
	{"FAME_SEND_QUEUE_BYTES", "sentinel", Override, "node.limits.send_queue_bytes", "8 MiB", "bytes queued per connection"},
	{"FAME_GLOBAL_QUEUE_BYTES", "sentinel", Override, "node.limits.global_queue_bytes", "GOMEMLIMIT/4, else 1 GiB", "bytes queued across all connections"},
	{"FAME_SLOW_CONSUMER_TIMEOUT_MS", "sentinel", Override, "node.limits.slow_consumer_timeout_ms", "write_timeout_ms (" + strconv.Itoa(int(DefaultWriteTimeout.Milliseconds())) + ")", "a peer that takes nothing this long is cut"},
	{"FAME_MAX_ROUTES", "sentinel", Override, "node.limits.max_routes", strconv.Itoa(DefaultMaxRoutes), "addresses one connection may bind"},
	{"FAME_MAX_CAPABILITIES", "sentinel", Override, "node.limits.max_capabilities", strconv.Itoa(DefaultMaxCapabilities), "capability entries per connection"},
	{"FAME_MAX_KEYS", "sentinel", Override, "node.limits.max_keys", strconv.Itoa(DefaultMaxKeys), "keys one connection may announce"},
	{"FAME_MAX_PENDING", "sentinel, node", Override, "node.limits.max_pending", strconv.Itoa(DefaultMaxPending), "sentinel: requests awaiting a reply per connection; node: calls in flight"},
	{"FAME_MAX_CONNECTIONS", "sentinel", Override, "node.limits.max_connections", strconv.Itoa(DefaultMaxConnections), "open WebSocket connections"},
	{"FAME_ATTACH_RATE", "sentinel", Override, "node.limits.attach_rate", strconv.FormatFloat(DefaultAttachRate, 'f', -1, 64) + "/s", "attach attempts per second per remote address"},
	{"FAME_ATTACH_BURST", "sentinel", Override, "node.limits.attach_burst", strconv.Itoa(DefaultAttachBurst), "burst of the attach rate"},
	{"FAME_ATTACH_RATE_LOOPBACK", "sentinel", Override, "node.limits.attach_rate_loopback", "false", "also rate-limit loopback addresses"},
	{"FAME_ADMIN_TOKEN", "sentinel, cli", Override, "node.admin.token", "", "bearer token for /stats, /metrics, /debug/pprof (at least 16 characters); fame healthcheck sends it; POST /admin/drain needs it set"},
	{"FAME_RATE_LIMIT_IDENTITY", "sentinel", Override, "node.limits.rate.per_identity.rate", "0 (unlimited)", "calls per second one caller identity (SPIFFE ID, else token subject, else system id) may start; past it RATE_LIMITED"},
	{"FAME_RATE_LIMIT_IDENTITY_BURST", "sentinel", Override, "node.limits.rate.per_identity.burst", "one second's worth", "burst of the per-identity rate"},
	{"FAME_RATE_LIMIT_ADDRESS", "sentinel", Override, "node.limits.rate.per_address.rate", "0 (unlimited)", "calls per second one target address may take; past it RATE_LIMITED"},
	{"FAME_RATE_LIMIT_ADDRESS_BURST", "sentinel", Override, "node.limits.rate.per_address.burst", "one second's worth", "burst of the per-address rate"},
	{"FAME_DRAIN_TIMEOUT", "sentinel, node", Override, "node.drain_timeout", DefaultDrainTimeout.String(), "sentinel: on SIGTERM or POST /admin/drain, how long calls in flight get for their replies before it exits, and how long a replica drain (POST /admin/replicas/{id}/drain) moves sessions before it moves the busy ones too; node: how long a replica's SIGTERM drain (Node.Drain) waits before it closes anyway (Go duration)"},

	// The HTTP gateway: a `listeners:` entry of type AgentHttpGatewayListener (restart-only).
	{"FAME_GATEWAY", "sentinel", Override, "node.listeners[AgentHttpGatewayListener].enabled", "off", "on: serve the HTTP gateway (POST /fame/v1/gateway/rpc, /messages; GET /health) on the sentinel's port, over TLS with -tls-cert; callers attach with their own bearer token; under strict-overlay (welcome admission only) each caller is admitted by welcome with its bearer and gets a certificate of its own"},
	{"FAME_GATEWAY_ALLOWED_ORIGINS", "sentinel", Override, "node.listeners[AgentHttpGatewayListener].allowed_origins", "", "comma-separated CORS origins (scheme://host[:port]) allowed on the gateway (empty: CORS off, cross-origin requests refused)"},
	{"FAME_GATEWAY_WELCOME_URL", "sentinel", Override, "node.listeners[AgentHttpGatewayListener].welcome_url", "FAME_ADMISSION_SERVICE_URL", "strict-overlay: the welcome hello URL that admits each gateway caller with its own bearer token"},
	{"FAME_GATEWAY_BODY_LIMIT", "sentinel", Override, "node.listeners[AgentHttpGatewayListener].limits.body_limit_bytes", "1048576", "largest gateway request body in bytes"},

	// Clustering (issue #15): the `cluster:` block; see clustercfg.Config. No listen and no url: no cluster.
	{"FAME_CLUSTER_NAME", "sentinel", Override, "cluster.name", "", "cluster name: NATS cluster, subject and bucket prefix ([A-Za-z0-9_-], FAME_NODE_ID required)"},
	{"FAME_CLUSTER_LISTEN", "sentinel", Override, "cluster.listen", "", "host:port of the embedded NATS route port; starts the embedded server"},
	{"FAME_CLUSTER_ROUTES", "sentinel", Override, "cluster.routes", "", "comma-separated seed URLs nats-route://host:port (list every member)"},
	{"FAME_CLUSTER_URL", "sentinel", Override, "cluster.url", "", "use this external NATS (tls://host:port, 2.11 or newer) instead of the embedded one"},
	{"FAME_CLUSTER_CLIENT_LISTEN", "sentinel", Override, "cluster.client_listen", clustercfg.DefaultClientListen, "embedded NATS client port (TLS + auth; the sentinel itself connects in-process)"},
	{"FAME_CLUSTER_DATA_LISTEN", "sentinel", Override, "cluster.data_listen", "listen's host, any port", "host:port of the direct data path (peer links: envelopes between sentinels on mutual TLS instead of through NATS); off: NATS only"},
	{"FAME_CLUSTER_DATA_ADVERTISE", "sentinel", Override, "cluster.data_advertise", "the bound address", "host or host:port peers dial for the data path (required when data_listen's host is 0.0.0.0)"},
	{"FAME_CLUSTER_DATA_DIR", "sentinel", Override, "cluster.data_dir", "nats/ beside storage.path", "JetStream directory of the embedded server"},
	{"FAME_CLUSTER_REPLICAS", "sentinel", Override, "cluster.replicas", "min(3, 1 + other routes)", "JetStream replication of the binding and directory buckets"},
	{"FAME_CLUSTER_TLS_CERT", "sentinel", Override, "cluster.tls.cert", "", "PEM certificate of this sentinel for routes and client links (stack CA)"},
	{"FAME_CLUSTER_TLS_KEY", "sentinel", Override, "cluster.tls.key", "", "its PEM key"},
	{"FAME_CLUSTER_TLS_CA", "sentinel", Override, "cluster.tls.ca", "", "PEM CA bundle cluster peers must chain to"},
	{"FAME_CLUSTER_USER", "sentinel", Override, "cluster.auth.user", "", "NATS user of routes and client links (and of peer links)"},
	{"FAME_CLUSTER_PASSWORD", "sentinel", Override, "cluster.auth.password", "", "its password (required for the embedded server and the data path: routes and peer links use it)"},
	{"FAME_CLUSTER_NKEY_SEED_FILE", "sentinel", Override, "cluster.auth.nkey_seed_file", "", "client links authenticate with this nkey user seed instead of the password"},
	{"FAME_CLUSTER_HEARTBEAT", "sentinel", Override, "cluster.heartbeat", clustercfg.DefaultHeartbeat.String(), "sentinel heartbeat period; 3 missed (missed_beats) = down"},

	// OpenTelemetry tracing (their standard names; package tracing). Off unless an endpoint is set.
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "sentinel, node", Override, "tracing.endpoint", "", "OTLP/HTTP collector base URL (spans go to <url>/v1/traces); set: tracing on"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "sentinel, node", Override, "tracing.traces_endpoint", "", "OTLP/HTTP traces URL, used as it is; wins over the base URL"},
	{"OTEL_TRACES_SAMPLER_ARG", "sentinel, node", Override, "tracing.sample_ratio", "1", "fraction of traces recorded, (0, 1]; applied to remote sampled parents too"},
	{"OTEL_SERVICE_NAME", "sentinel, node", Override, "tracing.service_name", "fame (node: the program's)", "service.name of the spans"},
	{"OTEL_SDK_DISABLED", "sentinel, node", EnvOnly, "", "false", "true turns tracing off whatever the file says"},

	// Sentinel variables without a YAML key.
	{"FAME_SHOW_ENVELOPES", "sentinel, node", EnvOnly, "", "false", "print every envelope"},
	{"FAME_PPROF", "sentinel", EnvOnly, "", "false", "serve /debug/pprof"},
	{"FAME_CA_CERTS", "sentinel, node, cli", EnvOnly, "", "", "CA bundle (PEM file or inline PEM) node certificates chain to; required by strict-overlay"},
	{"FAME_JWT_TRUSTED_ISSUER", "sentinel", EnvOnly, "", "", "direct: the OAuth2 issuer; welcome: the ticket issuer"},
	{"FAME_JWKS_URL", "sentinel", EnvOnly, "", "<issuer>/.well-known/jwks.json", "keys of the issuer"},
	{"FAME_JWT_AUDIENCE", "sentinel, node", EnvOnly, "", "sentinel: its physical path", "token audience"},
	{"FAME_TRUSTED_CLIENT_SCOPE", "sentinel", EnvOnly, "", "node.trusted", "direct: scope exempt from subject binding"},
	{"FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY", "sentinel", EnvOnly, "", "false", "direct: a token's subject is the only system id it may attach as"},
	{"FAME_ADMISSION_GRANTS", "sentinel", EnvOnly, "", "", "direct: per-client grants (sub=... system_ids=... logicals=...)"},
	{"FAME_ADMISSION_GRANTS_FILE", "sentinel", EnvOnly, "", "", "direct: file of grants, one per line"},

	// The Go SDK (config.Node).
	{"FAME_DIRECT_ADMISSION_URL", "node, cli", EnvOnly, "", "", "attach URL, ws(s)://host/fame/v1/attach/ws/downstream; a comma-separated list (the sentinels of a cluster): the first, then the next one on every re-attach"},
	{"FAME_NODE_ID_SALT", "node", EnvOnly, "", "", "recorded only (a Go node's id is random)"},
	{"FAME_REQUESTED_LOGICALS", "node", EnvOnly, "", "", "comma-separated logicals when the program sets none"},
	{"FAME_DEFAULT_ENCRYPTION_LEVEL", "node", EnvOnly, "", "strict-overlay: channel", "plaintext, channel or sealed"},
	{"FAME_FLOW_CONTROL", "node", EnvOnly, "", "on", "off stops CreditUpdates"},
	{"FAME_REPLY_CACHE_SIZE", "node", EnvOnly, "", "4096", "requests whose replies a node keeps to send again to a re-sent request (0: off)"},
	{"FAME_REPLY_CACHE_BYTES", "node", EnvOnly, "", "4194304", "bytes of kept replies; a request's replies above 1/16 of it are not kept (REPLY_NOT_KEPT)"},
	{"FAME_REPLY_CACHE_TTL", "node", EnvOnly, "", "2m", "how long a reply is kept (Go duration)"},
	{"FAME_DELIVERY_MAX_RETRIES", "node", EnvOnly, "", "5 (replies: 6)", "at-least-once re-sends"},
	{"FAME_DELIVERY_BASE_DELAY_MS", "node", EnvOnly, "", "1000 (replies: 100)", "first re-send delay"},
	{"FAME_DELIVERY_MAX_DELAY_MS", "node", EnvOnly, "", "10000 (replies: 2000)", "longest re-send delay"},
	{"FAME_DELIVERY_BACKOFF_FACTOR", "node", EnvOnly, "", "2.0 (replies: 1.8)", "delay growth per re-send"},
	{"FAME_DELIVERY_JITTER_MS", "node", EnvOnly, "", "200 (replies: 50)", "random extra delay"},
	{"FAME_CHANNEL_IDLE_TIMEOUT", "node", EnvOnly, "", "10m", "an unused secure channel is closed"},
	{"FAME_MAX_HANDLERS", "node", EnvOnly, "", "1024", "request handlers at once"},
	{"FAME_HANDLER_QUEUE", "node", EnvOnly, "", "1024", "requests waiting for a handler, then OVERLOADED"},
	{"FAME_REPLAY_WINDOW", "node", EnvOnly, "", "10m", "oldest envelope ts accepted"},
	{"FAME_REPLAY_FUTURE_SKEW", "node", EnvOnly, "", "1m", "newest envelope ts accepted"},
	{"FAME_REPLAY_CACHE_SIZE", "node", EnvOnly, "", "65536", "envelope ids remembered"},
	{"FAME_ADMISSION_SERVICE_URL", "node, sentinel", EnvOnly, "", "", "welcome: the welcome service's hello URL (the sentinel's gateway admits its callers there unless FAME_GATEWAY_WELCOME_URL is set)"},
	{"FAME_ADMISSION_TOKEN_URL", "node", EnvOnly, "", "", "direct, welcome: OAuth2 token URL (direct without it sends no token)"},
	{"FAME_ADMISSION_CLIENT_ID", "node", EnvOnly, "", "", "OAuth2 client id"},
	{"FAME_ADMISSION_CLIENT_SECRET", "node", EnvOnly, "", "", "OAuth2 client secret"},

	// fame subcommands: defaults of their flags.
	{"FAME_CONFIG", "cli", EnvOnly, "", "", "fame sentinel -c"},
	{"FAME_TLS_CERT_FILE", "cli", EnvOnly, "", "", "-tls-cert of fame sentinel and the services"},
	{"FAME_TLS_KEY_FILE", "cli", EnvOnly, "", "", "-tls-key of fame sentinel and the services"},
	{"FAME_CA_DIR", "cli", EnvOnly, "", "", "fame ca -dir"},
}

// ParseBool is the one reading of a boolean FAME_* value: 1, true, yes, on, enabled or
// 0, false, no, off, disabled, in any case and with surrounding spaces. ok is false for any
// other value (including empty), which callers report instead of guessing.
func ParseBool(v string) (b, ok bool) { return envx.ParseBool(v) }

// vars reads FAME_* values through a Getenv and collects every malformed one, so that a
// caller reports all problems at once.
type vars struct {
	env      Getenv
	problems []string
}

// str returns the value of name, "" when unset.
func (e *vars) str(name string) string {
	v, _ := e.env(name)
	return v
}

func (e *vars) bad(name, v, want string) {
	e.problems = append(e.problems, fmt.Sprintf("%s=%q: %s", name, v, want))
}

// boolean returns the value of name as a bool; nil when unset or empty.
func (e *vars) boolean(name string) *bool {
	v := e.str(name)
	if v == "" {
		return nil
	}
	b, ok := ParseBool(v)
	if !ok {
		e.bad(name, v, "want true or false (or on/off, yes/no, 1/0)")
		return nil
	}
	return &b
}

func (e *vars) integer(name string) *int {
	v := e.str(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.bad(name, v, "not an integer")
		return nil
	}
	return &n
}

func (e *vars) int64(name string) *int64 {
	v := e.str(name)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.bad(name, v, "not an integer")
		return nil
	}
	return &n
}

// duration returns the value of name as a positive Go duration (e.g. 30s); nil when unset.
func (e *vars) duration(name string) *time.Duration {
	v := e.str(name)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.bad(name, v, "not a positive duration (e.g. 30s)")
		return nil
	}
	return &d
}

func (e *vars) float(name string) *float64 {
	v := e.str(name)
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.bad(name, v, "not a number")
		return nil
	}
	return &f
}
