package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/balancer"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/internal/syncbuf"
)

// reloadSentinel is an offline sentinel (no listener) built from env, with its logger's level
// handed over (WithLogLevel) and its log kept.
func reloadSentinel(t *testing.T, env map[string]string) (*Sentinel, *slog.LevelVar, *syncbuf.Buffer) {
	t.Helper()
	opts, err := LoadOptions("", config.MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	opts.IdleTimeout = 0
	// Under 4096 bindings the table has one shard, so that a cache_max is exact (from 4096 up
	// it has 32, each holding at least one).
	opts.StickyCacheMax = 1000
	lv := new(slog.LevelVar)
	logs := &syncbuf.Buffer{}
	s, err := New(opts, WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: lv}))), WithLogLevel(lv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.sticky.close() })
	return s, lv, logs
}

func reloadCount(t *testing.T, s *Sentinel, result string) float64 {
	return counterValue(t, s.reload.results.WithLabelValues(result))
}

// TestReloadAppliesEachSetting changes one reloadable setting per case and checks what it does
// in the running sentinel, not just that the option was stored.
func TestReloadAppliesEachSetting(t *testing.T) {
	members := []balancer.Member{{ID: "a"}, {ID: "b"}}
	cases := []struct {
		key    string
		before func(t *testing.T, s *Sentinel) // optional: state made under the old settings
		change func(o *Options)
		effect func(t *testing.T, s *Sentinel, lv *slog.LevelVar)
	}{
		{"node.load_balancing.profile", nil, func(o *Options) { o.LoadBalancing = LoadBalancingRoundRobin }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			// HRW sends one key to one member every time; round robin alternates.
			first, _ := s.lb.Pick("session-1", members)
			second, _ := s.lb.Pick("session-1", members)
			if first == second {
				t.Fatalf("two picks of one key went to %s both times: still HRW", first)
			}
		}},
		{"node.stickiness.default_ttl_sec", nil, func(o *Options) { o.StickyDefaultTTL = 90 * time.Second }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			if got := s.sticky.table.Config().DefaultTTL; got != 90*time.Second {
				t.Fatalf("table DefaultTTL %v", got)
			}
		}},
		{"node.stickiness.max_ttl_sec", nil, func(o *Options) { o.StickyMaxTTL = o.StickyDefaultTTL }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			if got := s.sticky.table.Config().MaxTTL; got != config.DefaultStickyTTL {
				t.Fatalf("table MaxTTL %v", got)
			}
		}},
		{"node.stickiness.cache_max", nil, func(o *Options) { o.StickyCacheMax = 4 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			// The fixture binds 10 sessions before the reload: a smaller table evicts at once.
			if st := s.sticky.stats(); st.Size != 4 || st.Evictions != 6 {
				t.Fatalf("after cache_max 4: size %d, evictions %d; want 4 and 6", st.Size, st.Evictions)
			}
		}},
		{"node.limits.max_routes", nil, func(o *Options) { o.MaxRoutes = 2 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			c := offlineConn(s, "r1")
			for i, want := range []bool{true, true, false} {
				if got := s.limits.holdRoute(c, fmt.Sprintf("svc%d@fame.fabric", i)); got != want {
					t.Fatalf("bind %d: %v, want %v", i, got, want)
				}
			}
		}},
		{"node.limits.max_capabilities", nil, func(o *Options) { o.MaxCapabilities = 1 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			if s.limits.holdCaps(offlineConn(s, "r1"), "svc@fame.fabric", []string{"a", "b"}) {
				t.Fatal("two capabilities held under max_capabilities 1")
			}
		}},
		{"node.limits.max_keys", nil, func(o *Options) { o.MaxKeys = 1 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			if err := s.limits.checkKeys(offlineConn(s, "r1"), 2); err == nil {
				t.Fatal("two keys accepted under max_keys 1")
			}
		}},
		{"node.limits.max_connections", nil, func(o *Options) { o.MaxConnections = 1 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "127.0.0.1:1"
			if _, ok := s.limits.admitUpgrade(httptest.NewRecorder(), r, "a"); !ok {
				t.Fatal("first connection refused")
			}
			w := httptest.NewRecorder()
			if _, ok := s.limits.admitUpgrade(w, r, "b"); ok || w.Code != http.StatusServiceUnavailable {
				t.Fatalf("second connection under max_connections 1: ok=%v %d", ok, w.Code)
			}
		}},
		{"node.limits.attach_burst", func(t *testing.T, s *Sentinel) {
			// A bucket made under the old burst (5000) must not outlive the reload.
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "10.1.2.3:1"
			release, ok := s.limits.admitUpgrade(httptest.NewRecorder(), r, "a")
			if !ok {
				t.Fatal("refused before the reload")
			}
			release()
		}, func(o *Options) { o.AttachBurst, o.AttachRate = 1, 0.001 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "10.1.2.3:1"
			if _, ok := s.limits.admitUpgrade(httptest.NewRecorder(), r, "a"); !ok {
				t.Fatal("first attempt refused")
			}
			w := httptest.NewRecorder()
			if _, ok := s.limits.admitUpgrade(w, r, "b"); ok || w.Code != http.StatusTooManyRequests {
				t.Fatalf("second attempt under burst 1: ok=%v %d (the bucket made before the reload was kept)", ok, w.Code)
			}
		}},
		{"node.limits.attach_rate_loopback", nil, func(o *Options) { o.AttachRateLoopback, o.AttachBurst, o.AttachRate = true, 1, 0.001 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "127.0.0.1:1"
			s.limits.admitUpgrade(httptest.NewRecorder(), r, "a")
			if _, ok := s.limits.admitUpgrade(httptest.NewRecorder(), r, "b"); ok {
				t.Fatal("loopback not rate-limited after attach_rate_loopback")
			}
		}},
		{"node.limits.max_pending", nil, func(o *Options) { o.MaxPending = 1 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			from, to := offlineConn(s, "client"), offlineConn(s, "replica")
			_, h1 := request(t, from, "math@fame.fabric", 1)
			_, h2 := request(t, from, "math@fame.fabric", 1)
			if !to.trackPending(h1) || to.trackPending(h2) {
				t.Fatal("second request tracked under max_pending 1")
			}
		}},
		{"node.limits.slow_consumer_timeout_ms", nil, func(o *Options) { o.SlowConsumerTimeout = 3 * time.Second }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			if got := offlineConn(s, "r1").limits.o().SlowConsumerTimeout; got != 3*time.Second {
				t.Fatalf("a connection's slow-consumer timeout: %v", got)
			}
		}},
		{"node.limits.send_queue", nil, func(o *Options) { o.SendQueue, o.SendQueueBytes = 32, 1<<20 }, func(t *testing.T, s *Sentinel, _ *slog.LevelVar) {
			if q := offlineConn(s, "r1").q.Limits(); q.Count != 32 || q.Bytes != 1<<20 {
				t.Fatalf("a new connection's queue: %+v", q)
			}
		}},
		{"logging.level", nil, func(o *Options) { o.LogLevel = "debug" }, func(t *testing.T, _ *Sentinel, lv *slog.LevelVar) {
			if lv.Level() != slog.LevelDebug {
				t.Fatalf("level %v", lv.Level())
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			s, lv, logs := reloadSentinel(t, map[string]string{"FAME_STICKINESS": "on"})
			for i := range 10 {
				s.sticky.table.Bind(fmt.Sprintf("sid%d", i), "r", 0)
			}
			if c.before != nil {
				c.before(t, s)
			}
			o := s.reload.live
			c.change(&o)
			applied, err := s.Reload(o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(applied, c.key) {
				t.Fatalf("applied %v, want %s among them", applied, c.key)
			}
			c.effect(t, s, lv)
			if got := reloadCount(t, s, "applied"); got != 1 || s.Generation() != 1 {
				t.Fatalf("applied counter %v, generation %d", got, s.Generation())
			}
			if !strings.Contains(logs.String(), "config reloaded") || !strings.Contains(logs.String(), c.key) {
				t.Fatalf("no log line naming %s:\n%s", c.key, logs)
			}
		})
	}
}

// TestReloadRefusesRestartOnly: a reload that changes settings a running sentinel cannot change
// is refused whole, naming each of them; the reloadable change in the same reload is not
// applied either.
func TestReloadRefusesRestartOnly(t *testing.T) {
	s, _, logs := reloadSentinel(t, nil)
	o := s.reload.live
	o.Port = 9001
	o.ID = "other"
	o.SecurityProfile = "overlay"
	o.StoragePath = filepath.Join(t.TempDir(), "b.db")
	o.StorageProfile = StorageBbolt
	o.MaxRoutes = 3 // reloadable, but the reload is all or nothing
	_, err := s.Reload(o)
	var rr *RestartRequiredError
	if !errors.As(err, &rr) || !errors.Is(err, ErrRestartRequired) {
		t.Fatalf("err = %v, want a RestartRequiredError", err)
	}
	want := []string{"node.id", "node.listeners[].port", "node.security.profile", "node.storage.profile", "node.storage.path"}
	if !reflect.DeepEqual(rr.Keys, want) {
		t.Fatalf("keys %v, want %v", rr.Keys, want)
	}
	if s.limits.o().MaxRoutes != config.DefaultMaxRoutes || s.reload.live.MaxRoutes != config.DefaultMaxRoutes {
		t.Fatal("max_routes applied by a refused reload")
	}
	if reloadCount(t, s, "refused") != 1 || reloadCount(t, s, "applied") != 0 || s.Generation() != 0 {
		t.Fatalf("refused %v applied %v generation %d", reloadCount(t, s, "refused"), reloadCount(t, s, "applied"), s.Generation())
	}
	if !strings.Contains(logs.String(), "config reload refused") || !strings.Contains(logs.String(), "node.security.profile") {
		t.Fatalf("refusal not logged with its keys:\n%s", logs)
	}
	// Without a level to change, logging.level needs a restart too.
	opts := s.reload.live
	plain, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.sticky.close()
	opts.LogLevel = "debug"
	if _, err := plain.Reload(opts); !errors.As(err, &rr) || !slices.Equal(rr.Keys, []string{"logging.level"}) {
		t.Fatalf("logging.level without WithLogLevel: %v", err)
	}
}

// TestReloadListsEveryProblem: an invalid configuration is refused with every problem, and
// nothing of it applies.
func TestReloadListsEveryProblem(t *testing.T) {
	s, _, _ := reloadSentinel(t, nil)
	o := s.reload.live
	o.MaxKeys = -1
	o.SendQueue = 1
	o.LoadBalancing = "fastest"
	o.LogLevel = "loud"
	o.MaxRoutes = 7
	_, err := s.Reload(o)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a ConfigError", err)
	}
	for _, want := range []string{"limits.max_keys -1", "limits.send_queue 1", `load_balancing.profile: "fastest"`, `logging.level: "loud"`} {
		if !strings.Contains(ce.Error(), want) {
			t.Fatalf("problems lack %q:\n%v", want, ce)
		}
	}
	if s.limits.o().MaxRoutes == 7 || reloadCount(t, s, "refused") != 1 {
		t.Fatal("an invalid reload was applied, or not counted")
	}
}

// TestReloadCoversEveryOption: every field of Options is either reloadable or named as needing
// a restart, so a new option cannot be silently dropped by a reload.
func TestReloadCoversEveryOption(t *testing.T) {
	var leaves []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			switch {
			case f.Anonymous:
				walk(f.Type, prefix)
			case f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath():
				walk(f.Type, prefix+f.Name+".")
			default:
				leaves = append(leaves, prefix+f.Name)
			}
		}
	}
	walk(reflect.TypeOf(Options{}), "")
	known := map[string]bool{}
	for _, st := range settings {
		known[st.field] = true
		if !st.get(&Options{}).IsValid() {
			t.Errorf("settings names %s, which Options lacks", st.field)
		}
	}
	for _, l := range leaves {
		if !known[l] {
			t.Errorf("Options.%s is in no reload setting: say whether a reload may change it", l)
		}
	}
}

// TestReloadGrantsFile: the direct profile's grants file is re-read on reload; a subject granted
// only by the new file is admitted after it, and emptying the file is refused (it would let any
// token attach as any system id).
func TestReloadGrantsFile(t *testing.T) {
	grants := filepath.Join(t.TempDir(), "grants")
	write := func(s string) {
		if err := os.WriteFile(grants, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric\n")
	s, _, _ := reloadSentinel(t, map[string]string{"FAME_ADMISSION_PROFILE": "direct", "FAME_JWT_TRUSTED_ISSUER": "https://issuer",
		"FAME_JWT_AUDIENCE": testAudience, "FAME_ADMISSION_GRANTS_FILE": grants, "FAME_NODE_ID": "S1"})
	key, err := jose.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s.directAuth().v = staticDirect(t, key).v
	granted := func(sub, systemID string) bool {
		now := time.Now()
		tok, err := key.Sign(&token.Claims{Issuer: "https://issuer", Subject: sub, Audience: token.Audience{testAudience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), Scope: token.ScopeNodeConnect})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.auth.Authenticate(context.Background(), tok, systemID)
		if err != nil {
			t.Fatal(err)
		}
		return p.grant.ok && p.grant.set.AllowsID(sub, systemID)
	}
	if granted("math-client", "client-1") {
		t.Fatal("math-client granted before the reload")
	}
	write("sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric\nsub=math-client system_ids=client-*\n")
	applied, err := s.Reload(s.reload.live)
	if err != nil || !slices.Contains(applied, grantsKey) {
		t.Fatalf("reload: %v %v", applied, err)
	}
	if !granted("math-client", "client-1") || !granted("math-replicas", "math-replica1") {
		t.Fatal("the new grants are not in force")
	}
	write("")
	_, err = s.Reload(s.reload.live)
	var rr *RestartRequiredError
	if !errors.As(err, &rr) || !strings.Contains(rr.Keys[0], "every grant removed") {
		t.Fatalf("emptied grants file: %v, want a refusal", err)
	}
	write("sub=math-client system_ids=*** logicals=*\n")
	if _, err = s.Reload(s.reload.live); !errors.Is(err, ErrConfig) {
		t.Fatalf("invalid grants file: %v, want a ConfigError", err)
	}
	if !granted("math-client", "client-1") {
		t.Fatal("a refused reload changed the grants")
	}
}

// TestReloadTrustBundle: FAME_CA_CERTS names a file; a reload re-reads it and the key store
// checks certificates against the new roots.
func TestReloadTrustBundle(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	ca1, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := ca.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bundle, ca1.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _, _ := reloadSentinel(t, map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_CA_CERTS": bundle})
	roots := func() []string {
		var out []string
		for _, c := range s.sec.ksOpts.Trust.X509Authorities() {
			out = append(out, string(c.Raw))
		}
		return out
	}
	if r := roots(); len(r) != 1 || r[0] != string(ca1.Root.Raw) {
		t.Fatal("not started with ca1")
	}
	if applied, err := s.Reload(s.reload.live); err != nil || len(applied) != 0 {
		t.Fatalf("unchanged bundle: applied %v, %v", applied, err)
	}
	if err := os.WriteFile(bundle, append(ca1.RootPEM(), ca2.RootPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	applied, err := s.Reload(s.reload.live)
	if err != nil || !slices.Equal(applied, []string{trustKey}) {
		t.Fatalf("applied %v, %v", applied, err)
	}
	if r := roots(); len(r) != 2 || r[1] != string(ca2.Root.Raw) {
		t.Fatal("the new bundle is not in force")
	}
	if err := os.WriteFile(bundle, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(s.reload.live); !errors.Is(err, ErrConfig) || len(roots()) != 2 {
		t.Fatalf("a broken bundle: %v, roots %d; want a refusal and the old roots", err, len(roots()))
	}
}
