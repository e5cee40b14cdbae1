package config

import "time"

// SentinelDefaultFile is the sentinel configuration used when no file is given: the
// reference's sentinel config, so the FAME_* variables of the Template kind (see Vars) work
// the same way.
const SentinelDefaultFile = `
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

// SentinelEnv is what the FAME_* variables say about a sentinel beyond its file: the
// Override variables (nil or empty: not set, the file's value stands) and the EnvOnly ones.
// sentinel.Resolve applies it; the sentinel package itself reads no variable.
type SentinelEnv struct {
	Port          *int  // FAME_LISTENER_WEBSOCKET_PORT
	Stickiness    *bool // FAME_STICKINESS
	ShowEnvelopes bool  // FAME_SHOW_ENVELOPES
	Pprof         bool  // FAME_PPROF
	LogFormat     string
	LogLevel      string
	StoragePath   string // FAME_STORAGE_PATH, used when the file gives no path

	SendQueue           *int
	SendQueueBytes      *int64
	GlobalQueueBytes    *int64
	SlowConsumerTimeout *int // milliseconds
	MaxRoutes           *int
	MaxCapabilities     *int
	MaxKeys             *int
	MaxPending          *int
	MaxConnections      *int
	AttachRate          *float64
	AttachBurst         *int
	AttachRateLoopback  *bool
	AdminToken          string
	DrainTimeout        *time.Duration // FAME_DRAIN_TIMEOUT

	// The HTTP gateway (the AgentHttpGatewayListener entry of listeners).
	Gateway          *bool  // FAME_GATEWAY
	GatewayOrigins   string // FAME_GATEWAY_ALLOWED_ORIGINS, comma-separated; "": the file's stand
	GatewayBodyLimit *int64 // FAME_GATEWAY_BODY_LIMIT
	// GatewayWelcomeURL is FAME_GATEWAY_WELCOME_URL, else FAME_ADMISSION_SERVICE_URL: the
	// welcome hello URL each gateway caller is admitted by under strict-overlay.
	GatewayWelcomeURL string

	// Call rate limits (limits.rate): the default bucket of each rule; overrides are YAML only.
	RateIdentity      *float64 // FAME_RATE_LIMIT_IDENTITY
	RateIdentityBurst *int     // FAME_RATE_LIMIT_IDENTITY_BURST
	RateAddress       *float64 // FAME_RATE_LIMIT_ADDRESS
	RateAddressBurst  *int     // FAME_RATE_LIMIT_ADDRESS_BURST

	// TrustBundle is FAME_CA_CERTS: a PEM file path or inline PEM.
	TrustBundle string
	Admission   AdmissionEnv
	// Tracing are the OTEL_* variables (tracing.go).
	Tracing TracingEnv

	// Problems are the malformed values, one line each, naming the variable.
	Problems []string
}

// AdmissionEnv are the sentinel's admission settings (the reference's variable names).
type AdmissionEnv struct {
	Issuer              string // FAME_JWT_TRUSTED_ISSUER
	JWKSURL             string // FAME_JWKS_URL
	Audience            string // FAME_JWT_AUDIENCE
	TrustedClientScope  string // FAME_TRUSTED_CLIENT_SCOPE
	EnforceTokenSubject bool   // FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY
	Grants              string // FAME_ADMISSION_GRANTS
	GrantsFile          string // FAME_ADMISSION_GRANTS_FILE
}

// GrantsVar names the variable of the direct profile's grants, for messages.
const GrantsVar = "FAME_ADMISSION_GRANTS"

// SentinelFromEnv reads the sentinel's Override and EnvOnly variables.
func SentinelFromEnv(env Getenv) SentinelEnv {
	e := &vars{env: env}
	s := SentinelEnv{
		Stickiness:  e.boolean("FAME_STICKINESS"),
		LogFormat:   e.str("FAME_LOG_FORMAT"),
		LogLevel:    e.str("FAME_LOG_LEVEL"),
		StoragePath: e.str("FAME_STORAGE_PATH"),

		SendQueue:           e.integer("FAME_SEND_QUEUE"),
		SendQueueBytes:      e.int64("FAME_SEND_QUEUE_BYTES"),
		GlobalQueueBytes:    e.int64("FAME_GLOBAL_QUEUE_BYTES"),
		SlowConsumerTimeout: e.integer("FAME_SLOW_CONSUMER_TIMEOUT_MS"),
		MaxRoutes:           e.integer("FAME_MAX_ROUTES"),
		MaxCapabilities:     e.integer("FAME_MAX_CAPABILITIES"),
		MaxKeys:             e.integer("FAME_MAX_KEYS"),
		MaxPending:          e.integer("FAME_MAX_PENDING"),
		MaxConnections:      e.integer("FAME_MAX_CONNECTIONS"),
		AttachRate:          e.float("FAME_ATTACH_RATE"),
		AttachBurst:         e.integer("FAME_ATTACH_BURST"),
		AttachRateLoopback:  e.boolean("FAME_ATTACH_RATE_LOOPBACK"),
		AdminToken:          e.str("FAME_ADMIN_TOKEN"),
		DrainTimeout:        e.duration("FAME_DRAIN_TIMEOUT"),
		Gateway:             e.boolean("FAME_GATEWAY"),
		GatewayOrigins:      e.str("FAME_GATEWAY_ALLOWED_ORIGINS"),
		GatewayBodyLimit:    e.int64("FAME_GATEWAY_BODY_LIMIT"),
		GatewayWelcomeURL:   firstSet(e.str("FAME_GATEWAY_WELCOME_URL"), e.str("FAME_ADMISSION_SERVICE_URL")),
		RateIdentity:        e.float("FAME_RATE_LIMIT_IDENTITY"),
		RateIdentityBurst:   e.integer("FAME_RATE_LIMIT_IDENTITY_BURST"),
		RateAddress:         e.float("FAME_RATE_LIMIT_ADDRESS"),
		RateAddressBurst:    e.integer("FAME_RATE_LIMIT_ADDRESS_BURST"),

		TrustBundle: e.str("FAME_CA_CERTS"),
		Admission: AdmissionEnv{
			Issuer:             e.str("FAME_JWT_TRUSTED_ISSUER"),
			JWKSURL:            e.str("FAME_JWKS_URL"),
			Audience:           e.str("FAME_JWT_AUDIENCE"),
			TrustedClientScope: e.str("FAME_TRUSTED_CLIENT_SCOPE"),
			Grants:             e.str(GrantsVar),
			GrantsFile:         e.str("FAME_ADMISSION_GRANTS_FILE"),
		},
	}
	s.Port = e.integer("FAME_LISTENER_WEBSOCKET_PORT")
	// Flags that were "true" or nothing: a malformed value is reported, never read as off.
	if b := e.boolean("FAME_SHOW_ENVELOPES"); b != nil {
		s.ShowEnvelopes = *b
	}
	if b := e.boolean("FAME_PPROF"); b != nil {
		s.Pprof = *b
	}
	if b := e.boolean("FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY"); b != nil {
		s.Admission.EnforceTokenSubject = *b
	}
	var tp []string
	s.Tracing, tp = TracingFromEnv(env)
	s.Problems = append(e.problems, tp...)
	return s
}

// firstSet is the first non-empty value (a specific variable before the general one).
func firstSet(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
