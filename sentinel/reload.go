package sentinel

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/balancer"
	"github.com/fame-go/fame/security"
)

// Hot reload: Reload puts a new configuration in force without dropping a connection. Each
// reloadable setting lives in the component that reads it, behind an atomic pointer (limiter,
// swapStrategy, the stickiness table's TTLs, the direct admission's grants) or a lock of its
// own (the trust bundle, the log level's slog.LevelVar), so the per-envelope path pays one
// atomic load and no lock. Settings a running sentinel cannot change (where it listens, its
// id and profiles, its storage) refuse the whole reload, named.
//
// The package reads no file of its own accord and installs no signal handler: `fame sentinel`
// (cmd/fame) re-reads its file on SIGHUP and when the file changes, checks it (Load, Check) and
// calls Reload.

// setting is one field of Options and the key an operator knows it by.
type setting struct {
	field   string // Options field (dotted for nested structs), read by reflection
	key     string // YAML key, or the variable for the EnvOnly settings
	restart bool   // a running sentinel cannot change it
}

// settings covers every field of Options (TestReloadCoversEveryOption checks it), so that a new
// option cannot be silently ignored by a reload: it has to be put on one side or the other.
var settings = []setting{
	{"ID", "node.id", true},
	{"RequestedLogicals", "node.requested_logicals", true},
	{"Host", "node.listeners[].host", true},
	{"Port", "node.listeners[].port", true},
	{"SecurityProfile", "node.security.profile", true},
	{"AdmissionProfile", "node.admission.profile", true},
	{"DeliveryProfile", "node.delivery.profile", true},
	{"LoadBalancing", "node.load_balancing.profile", false},
	{"Stickiness", "node.stickiness.enabled", true},
	{"StickinessLevel", "node.stickiness.security_level", true},
	{"StickyDefaultTTL", "node.stickiness.default_ttl_sec", false},
	{"StickyMaxTTL", "node.stickiness.max_ttl_sec", false},
	{"StickyCacheMax", "node.stickiness.cache_max", false},
	{"StorageProfile", "node.storage.profile", true},
	{"StoragePath", "node.storage.path", true},
	{"SendQueue", "node.limits.send_queue", false},
	{"WriteTimeout", "node.limits.write_timeout_ms", true},
	{"AttachTimeout", "node.limits.attach_timeout_ms", true},
	{"PingInterval", "node.limits.ping_interval_ms", true},
	{"IdleTimeout", "node.limits.idle_timeout_ms", true},
	{"SendQueueBytes", "node.limits.send_queue_bytes", false},
	{"GlobalQueueBytes", "node.limits.global_queue_bytes", true},
	{"SlowConsumerTimeout", "node.limits.slow_consumer_timeout_ms", false},
	{"MaxRoutes", "node.limits.max_routes", false},
	{"MaxCapabilities", "node.limits.max_capabilities", false},
	{"MaxKeys", "node.limits.max_keys", false},
	{"MaxPending", "node.limits.max_pending", false},
	{"MaxConnections", "node.limits.max_connections", false},
	{"AttachRate", "node.limits.attach_rate", false},
	{"AttachBurst", "node.limits.attach_burst", false},
	{"AttachRateLoopback", "node.limits.attach_rate_loopback", false},
	// The rate limiters are built once (ratelimit.go has no setter yet): a change needs a restart.
	{"RateLimits.PerIdentity.Default.Rate", "node.limits.rate.per_identity.rate", true},
	{"RateLimits.PerIdentity.Default.Burst", "node.limits.rate.per_identity.burst", true},
	{"RateLimits.PerIdentity.Overrides", "node.limits.rate.per_identity.overrides", true},
	{"RateLimits.PerAddress.Default.Rate", "node.limits.rate.per_address.rate", true},
	{"RateLimits.PerAddress.Default.Burst", "node.limits.rate.per_address.burst", true},
	{"RateLimits.PerAddress.Overrides", "node.limits.rate.per_address.overrides", true},
	{"RateLimits.MaxEntries", "node.limits.rate.max_entries", true},
	{"DrainTimeout", "node.drain_timeout", true},
	{"AdminToken", "node.admin.token", true},
	{"Pprof", "FAME_PPROF", true},
	{"Tracing", "tracing", true}, // the tracer is set up once by fame sentinel (WithTracer)
	{"Cluster", "cluster", true}, // the membership is opened once by fame sentinel (WithCluster)
	{"LogFormat", "logging.format", true},
	{"LogLevel", "logging.level", false},
	{"ShowEnvelopes", "FAME_SHOW_ENVELOPES", true},
	{"TrustBundle", "FAME_CA_CERTS", true}, // which bundle; its content is re-read (trustKey)
	{"Admission.Issuer", "FAME_JWT_TRUSTED_ISSUER", true},
	{"Admission.JWKSURL", "FAME_JWKS_URL", true},
	{"Admission.Audience", "FAME_JWT_AUDIENCE", true},
	{"Admission.TrustedClientScope", "FAME_TRUSTED_CLIENT_SCOPE", true},
	{"Admission.BindSubject", "FAME_ENFORCE_TOKEN_SUBJECT_NODE_IDENTITY", true},
	{"Admission.Grants", "FAME_ADMISSION_GRANTS", false},
	{"Admission.GrantsFile", "FAME_ADMISSION_GRANTS_FILE", false},
	// The gateway is mounted once by fame sentinel (its handler and caller nodes are built at start).
	{"Gateway.Enabled", "node.listeners[AgentHttpGatewayListener] (FAME_GATEWAY)", true},
	{"Gateway.AllowedOrigins", "node.listeners[AgentHttpGatewayListener].allowed_origins", true},
	{"Gateway.BodyLimit", "node.listeners[AgentHttpGatewayListener].limits.body_limit_bytes", true},
	{"Gateway.WelcomeURL", "node.listeners[AgentHttpGatewayListener].welcome_url (FAME_GATEWAY_WELCOME_URL)", true},
}

// Keys of what a reload re-reads from files even when no option changed.
const (
	trustKey  = "FAME_CA_CERTS (trust bundle content)"
	grantsKey = "admission grants (FAME_ADMISSION_GRANTS, _FILE content)"
)

func (st setting) get(o *Options) reflect.Value {
	v := reflect.ValueOf(o).Elem()
	for _, f := range strings.Split(st.field, ".") {
		v = v.FieldByName(f)
	}
	return v
}

// RestartRequiredError refuses a reload that changes settings a running sentinel cannot
// change; nothing of the reload was applied.
type RestartRequiredError struct {
	Keys []string // the changed restart-only settings, by YAML key (or variable)
}

func (e *RestartRequiredError) Error() string {
	return "reload refused: these settings need a restart: " + strings.Join(e.Keys, ", ")
}

// ErrRestartRequired matches a *RestartRequiredError with errors.Is.
var ErrRestartRequired = errors.New("reload refused: settings need a restart")

func (e *RestartRequiredError) Is(target error) bool { return target == ErrRestartRequired }

// reloader is the sentinel's reload state: the options in force and the reload metrics.
type reloader struct {
	mu      sync.Mutex // serialises reloads
	live    Options    // the options in force (guarded by mu)
	grants  *welcome.GrantSet
	level   *slog.LevelVar // nil: the logger's level is not the sentinel's to change
	results *prometheus.CounterVec
	gen     prometheus.Gauge
	lastOK  prometheus.Gauge
	genN    atomic.Int64
}

func newReloader(o Options, level *slog.LevelVar, reg prometheus.Registerer) *reloader {
	r := &reloader{live: o, level: level,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_config_reloads_total",
			Help: "Configuration reloads (SIGHUP, file change), by result: applied or refused (the old configuration stays in force)."}, []string{"result"}),
		gen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fame_config_generation",
			Help: "Configuration generation in force: 0 at start, +1 per applied reload."}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fame_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last applied reload (0: none since start)."}),
	}
	r.results.WithLabelValues("applied")
	r.results.WithLabelValues("refused")
	if reg != nil {
		reg.MustRegister(r.results, r.gen, r.lastOK)
	}
	return r
}

// WithLogLevel hands the sentinel the level of its logger, so that a reload can change it
// (logging.level). Without it a reload refuses a changed level as needing a restart.
func WithLogLevel(lv *slog.LevelVar) Option { return func(s *Sentinel) { s.logLevel = lv } }

// ParseLogLevel reads logging.level (FAME_LOG_LEVEL): debug (or trace), info, warn (or
// warning) or error, in any case.
func ParseLogLevel(v string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging.level: %q is not one of debug, info, warn, error", v)
}

// Generation is the configuration generation in force: 0 at start, one more per applied
// reload.
func (s *Sentinel) Generation() int64 { return s.reload.genN.Load() }

// RefuseReload records a reload refused before it reached Reload (the file did not parse or
// check): the log line with every problem and the refused counter. source names what asked
// (signal, file change).
func (s *Sentinel) RefuseReload(source string, err error) {
	s.reload.results.WithLabelValues("refused").Inc()
	s.log.Error("config reload refused; the running configuration stays in force", "source", source,
		"generation", s.Generation(), "problems", strings.Join(problemList(err), "; "))
}

// problemList is err as one problem per element, for the log.
func problemList(err error) []string {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce.Problems
	}
	var rr *RestartRequiredError
	if errors.As(err, &rr) {
		return []string{rr.Error()}
	}
	return []string{err.Error()}
}

// RestartKeys lists the settings of o that differ from the configuration in force and need a
// restart, for a caller that refuses o for other reasons but wants to name these too.
func (s *Sentinel) RestartKeys(o Options) []string {
	r := s.reload
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for _, st := range settings {
		if s.needsRestart(st) && !reflect.DeepEqual(st.get(&r.live).Interface(), st.get(&o).Interface()) {
			keys = append(keys, st.key)
		}
	}
	return keys
}

// needsRestart: the setting is restart-only, or the sentinel lacks the handle to change it
// (WithLogLevel; its own direct admission, not one given WithAuthenticator).
func (s *Sentinel) needsRestart(st setting) bool {
	switch {
	case st.restart:
		return true
	case st.key == "logging.level":
		return s.reload.level == nil
	case strings.HasPrefix(st.key, "FAME_ADMISSION_GRANTS"):
		return s.directAuth() == nil
	}
	return false
}

// prepared is a reload checked and built, ready to apply: nothing in it can fail any more.
type prepared struct {
	applied  []string
	lb       balancer.Strategy
	trust    []*x509.Certificate // nil: unchanged
	grants   *welcome.GrantSet
	grantsOK bool // grants changed
	level    slog.Level
}

// Check reports the problems of o that Resolve cannot see because they are in files o names:
// the admission grants and the trust bundle must read and parse. `fame validate` and a reload
// run it, so a file that validates reloads (or starts) as far as its own content goes.
func Check(o Options) error {
	var problems []string
	if o.AdmissionProfile == AdmissionDirect {
		if _, err := grantSet("/check", o.Admission); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if o.TrustBundle != "" {
		if _, err := security.LoadTrustBundle(o.TrustBundle); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return nil
}

// Reload puts o in force without dropping a connection and returns the keys it changed. It
// applies all of o or nothing: o is validated and checked first (every problem listed in a
// *ConfigError), a change of a setting that needs a restart refuses the reload with a
// *RestartRequiredError naming every such key, and the old configuration stays in force.
// What a reload changes:
//
//   - logging.level (with WithLogLevel);
//   - node.load_balancing.profile: sessions placed from now on (pinned ones stay pinned);
//   - node.stickiness.default_ttl_sec, max_ttl_sec (binds from now on) and cache_max (a
//     smaller one evicts the least recently used bindings at once);
//   - node.limits: max_routes, max_capabilities, max_keys, max_pending (checked on the next
//     bind, advertise, key announce or request), max_connections, attach_rate, attach_burst,
//     attach_rate_loopback (the next upgrade), slow_consumer_timeout_ms (the next write),
//     send_queue and send_queue_bytes (connections made from now on);
//   - the admission grants (FAME_ADMISSION_GRANTS_FILE is re-read): attaches from now on; a
//     connection keeps the grant it attached under until it re-attaches. Removing every grant
//     is refused (it would open admission to any system id; that takes a restart);
//   - the trust bundle (FAME_CA_CERTS names a file, re-read): keys presented from now on.
//
// Every attempt is logged (applied keys, or the refusal with its problems) and counted in
// fame_config_reloads_total{result}; an applied one moves fame_config_generation and
// fame_config_last_reload_success_timestamp_seconds.
func (s *Sentinel) Reload(o Options) (applied []string, err error) {
	return s.ReloadWith(o, "reload", nil, nil)
}

// ReloadWith is Reload for a caller that owns more of the configuration than the Options (the
// TLS certificate of `fame sentinel`'s listener): when the reload is applied, apply runs with
// the rest of it, and keys are listed among the applied ones, in the one log line of the
// reload. apply must not fail: the caller checks its part before. source says what asked for
// the reload (signal, file change), for the log.
func (s *Sentinel) ReloadWith(o Options, source string, keys []string, apply func()) (applied []string, err error) {
	r := s.reload
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := s.prepareReload(o)
	if err != nil {
		s.RefuseReload(source, err)
		return nil, err
	}
	s.applyReload(o, p)
	if apply != nil {
		apply()
	}
	p.applied = append(p.applied, keys...)
	r.live = o
	gen := r.genN.Add(1)
	r.gen.Set(float64(gen))
	r.lastOK.Set(float64(time.Now().UnixNano()) / 1e9)
	r.results.WithLabelValues("applied").Inc()
	s.log.Info("config reloaded", "source", source, "generation", gen, "applied", p.applied)
	return p.applied, nil
}

// prepareReload validates o against the options in force and builds what applying it needs.
func (s *Sentinel) prepareReload(o Options) (*prepared, error) {
	r := s.reload
	probs := o.validate()
	var ce *ConfigError
	if err := Check(o); errors.As(err, &ce) {
		probs = append(probs, ce.Problems...)
	} else if err != nil {
		probs = append(probs, err.Error()) // never let an unexpected check error pass a reload
	}
	if len(probs) > 0 {
		return nil, &ConfigError{Problems: probs}
	}
	p := &prepared{}
	var restart []string
	for _, st := range settings {
		if reflect.DeepEqual(st.get(&r.live).Interface(), st.get(&o).Interface()) {
			continue
		}
		if s.needsRestart(st) {
			restart = append(restart, st.key)
			continue
		}
		p.applied = append(p.applied, st.key)
	}
	// Files named by unchanged options: their content may have changed.
	if o.AdmissionProfile == AdmissionDirect && s.directAuth() != nil {
		gs, err := grantSet(s.path, o.Admission)
		if err != nil {
			return nil, &ConfigError{Problems: []string{err.Error()}}
		}
		old := s.directAuth().grants.Load()
		switch {
		case old != nil && gs == nil:
			restart = append(restart, grantsKey+": every grant removed (any token could attach as any system id)")
		case !sameGrants(old, gs):
			p.grants, p.grantsOK = gs, true
			if !containsPrefix(p.applied, "FAME_ADMISSION_GRANTS") {
				p.applied = append(p.applied, grantsKey)
			}
		}
	}
	if o.TrustBundle != "" && s.sec != nil {
		if s.sec.ksOpts.Trust == nil {
			restart = append(restart, trustKey)
		} else {
			b, err := security.LoadTrustBundle(o.TrustBundle)
			if err != nil {
				return nil, &ConfigError{Problems: []string{err.Error()}}
			}
			if nw := b.X509Authorities(); !sameCerts(s.sec.ksOpts.Trust.X509Authorities(), nw) {
				p.trust = nw
				p.applied = append(p.applied, trustKey)
			}
		}
	}
	if len(restart) > 0 {
		return nil, &RestartRequiredError{Keys: restart}
	}
	lb, err := balancer.New(string(o.LoadBalancing))
	if err != nil {
		return nil, &ConfigError{Problems: []string{err.Error()}}
	}
	p.lb = lb
	p.level, _ = ParseLogLevel(o.LogLevel)
	return p, nil
}

// applyReload puts a prepared reload in force; it cannot fail.
func (s *Sentinel) applyReload(o Options, p *prepared) {
	old := s.reload.live
	if o.LoadBalancing != old.LoadBalancing {
		s.lb.set(p.lb, o.LoadBalancing)
	}
	if s.sticky.table != nil && (o.StickyDefaultTTL != old.StickyDefaultTTL || o.StickyMaxTTL != old.StickyMaxTTL || o.StickyCacheMax != old.StickyCacheMax) {
		// validate has checked the values; SetLimits fails only on negative ones.
		if err := s.sticky.table.SetLimits(o.StickyDefaultTTL, o.StickyMaxTTL, o.StickyCacheMax); err != nil {
			s.log.Error("stickiness limits not applied", "err", err)
		}
	}
	s.limits.setOptions(o)
	if p.grantsOK {
		s.directAuth().grants.Store(p.grants)
	}
	if p.trust != nil {
		s.sec.ksOpts.Trust.SetX509Authorities(p.trust)
	}
	if s.reload.level != nil {
		s.reload.level.Set(p.level)
	}
}

// directAuth is the sentinel's own direct admission, nil when it has another one.
func (s *Sentinel) directAuth() *directAuth {
	a, _ := s.auth.(*directAuth)
	return a
}

func containsPrefix(keys []string, prefix string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// sameGrants compares two grant sets by what they grant.
func sameGrants(a, b *welcome.GrantSet) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a.Grants(), b.Grants())
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Raw, b[i].Raw) {
			return false
		}
	}
	return true
}

// swapStrategy is the load-balancing strategy the sticky router calls: a reload swaps the
// strategy behind it, and each pick reads it with one atomic load.
type swapStrategy struct{ cur atomic.Pointer[namedStrategy] }

type namedStrategy struct {
	balancer.Strategy
	name LoadBalancingProfile
}

func newSwapStrategy(s balancer.Strategy, name LoadBalancingProfile) *swapStrategy {
	w := &swapStrategy{}
	w.set(s, name)
	return w
}

func (w *swapStrategy) set(s balancer.Strategy, name LoadBalancingProfile) {
	w.cur.Store(&namedStrategy{Strategy: s, name: name})
}

// Pick implements balancer.Strategy.
func (w *swapStrategy) Pick(key string, members []balancer.Member) (string, bool) {
	return w.cur.Load().Pick(key, members)
}

// name is the strategy in force.
func (w *swapStrategy) name() LoadBalancingProfile { return w.cur.Load().name }
