package sentinel

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/security/aft"
	"github.com/fame-go/fame/tracing"
)

func TestListenerPortFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want int
	}{
		{nil, 8000},
		{map[string]string{"FAME_LISTENER_PORT": "0"}, 0}, // any free port
		{map[string]string{"FAME_LISTENER_PORT": "9123"}, 9123},
	}
	for _, c := range cases {
		get := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
		o, err := LoadOptions("", config.Getenv(get))
		if err != nil || o.Port != c.want {
			t.Errorf("env %v: port %d, %v; want %d", c.env, o.Port, err, c.want)
		}
	}
	get := func(k string) (string, bool) {
		if k == "FAME_LISTENER_PORT" {
			return "70000", true
		}
		return "", false
	}
	if _, err := LoadOptions("", config.Getenv(get)); !errors.Is(err, ErrConfig) {
		t.Errorf("port 70000 accepted: %v", err)
	}
}

// TestMisspeltBlockRefused: a misspelt security (or admission) block must never leave the
// sentinel at the open default; a key far from any known one is an extension, listed.
func TestMisspeltBlockRefused(t *testing.T) {
	none := config.Getenv(func(string) (string, bool) { return "", false })
	cases := []struct {
		name, body string
		fatal      bool
		ignored    []string
	}{
		{"securityy", "  securityy: {type: SecurityProfile, profile: strict-overlay}\n", true, nil},
		{"admision", "  admision: {type: AdmissionProfile, profile: direct}\n", true, nil},
		{"Security", "  Security: {profile: overlay}\n", true, nil},
		{"limits typo", "  limits: {max_route: 3}\n", true, nil},
		{"extension", "  traffic_store: {type: X}\n", false, []string{"node.traffic_store"}},
		{"clean", "  security: {type: SecurityProfile, profile: overlay}\n", false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := t.TempDir() + "/s.yml"
			if err := os.WriteFile(path, []byte("node:\n  type: Sentinel\n"+c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			o, ignored, err := Load(path, none)
			if c.fatal {
				if !errors.Is(err, config.ErrUnknownKey) {
					t.Fatalf("accepted (security %s): %v", o.SecurityProfile, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range ignored {
				got = append(got, k.Path)
			}
			if !slices.Equal(got, c.ignored) {
				t.Fatalf("ignored %v, want %v", got, c.ignored)
			}
		})
	}
	if _, ignored, err := Load("", none); err != nil || len(ignored) != 0 {
		t.Fatalf("built-in defaults: %v %v", ignored, err)
	}
}

// TestProfilesValidated: each profile is one of its constants.
func TestProfilesValidated(t *testing.T) {
	for _, kv := range [][2]string{{"FAME_SECURITY_PROFILE", "strictoverlay"}, {"FAME_ADMISSION_PROFILE", "welcom"},
		{"FAME_DELIVERY_PROFILE", "exactly-once"}, {"FAME_LOAD_BALANCING", "rr"}, {"FAME_STICKINESS_LEVEL", "none"},
		{"FAME_STORAGE_PROFILE", "redis"}, {"FAME_STICKINESS", "maybe"}, {"FAME_SHOW_ENVELOPES", "yes please"}} {
		get := func(k string) (string, bool) {
			if k == kv[0] {
				return kv[1], true
			}
			return "", false
		}
		_, err := LoadOptions("", get)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), kv[1]) {
			t.Errorf("%s=%s: %v", kv[0], kv[1], err)
		}
	}
	o, err := LoadOptions("", func(k string) (string, bool) {
		v, ok := map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_ADMISSION_PROFILE": "direct",
			"FAME_LOAD_BALANCING": "random", "FAME_STICKINESS": "off", "FAME_SHOW_ENVELOPES": "1"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.SecurityProfile != security.ProfileOverlay || o.AdmissionProfile != AdmissionDirect ||
		o.LoadBalancing != LoadBalancingRandom || o.Stickiness || !o.ShowEnvelopes {
		t.Fatalf("%+v", o.ProfileOptions)
	}
}

// TestVarsKeysExist: every YAML key README's variable table names (config.Vars) is a key of
// the sentinel's file schema, so the table cannot point at a key that does not exist.
func TestVarsKeysExist(t *testing.T) {
	for _, v := range config.Vars {
		if v.Key == "" {
			continue
		}
		typ := reflect.TypeFor[File]()
		for _, part := range strings.Split(v.Key, ".") {
			if i := strings.IndexByte(part, '['); i >= 0 { // listeners[] or listeners[Type]
				part = part[:i]
			}
			for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			found := false
			for i := 0; i < typ.NumField(); i++ {
				if name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ","); name == part {
					typ, found = typ.Field(i).Type, true
					break
				}
			}
			if !found {
				t.Errorf("%s: key %s: no %q in the sentinel schema", v.Name, v.Key, part)
				break
			}
		}
	}
}

// TestOverrideVarsWin: each variable the table marks "wins" overrides a file that sets its
// key; each "template" variable does not touch a file that sets its key.
func TestOverrideVarsWin(t *testing.T) {
	file := `node:
  id: fromfile
  listeners: [{type: WebSocketListener, host: 127.0.0.9, port: 9001},
    {type: AgentHttpGatewayListener, allowed_origins: ["https://file.example"], limits: {body_limit_bytes: 100}}]
  security: {profile: overlay}
  admission: {profile: open}
  storage: {profile: memory}
  delivery: {profile: at-least-once}
  load_balancing: {profile: random}
  stickiness: {enabled: true, security_level: strict}
  limits: {send_queue: 100, send_queue_bytes: 1048576, global_queue_bytes: 2097152, slow_consumer_timeout_ms: 3000,
    max_routes: 10, max_capabilities: 11, max_keys: 12, max_pending: 13, max_connections: 14, attach_rate: 15,
    attach_burst: 16, attach_rate_loopback: false,
    rate: {per_identity: {rate: 1, burst: 2}, per_address: {rate: 3, burst: 4}}}
  admin: {token: file-token-0123456789}
  drain_timeout: 10s
logging: {format: text, level: info}
tracing: {endpoint: "http://file:4318", traces_endpoint: "http://file:4318/t", sample_ratio: 0.5, service_name: file}
`
	path := t.TempDir() + "/s.yml"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		// wins
		"FAME_LISTENER_WEBSOCKET_PORT": "9002", "FAME_STICKINESS": "off", "FAME_LOG_FORMAT": "json", "FAME_LOG_LEVEL": "debug",
		"FAME_SEND_QUEUE": "200", "FAME_SEND_QUEUE_BYTES": "2097152", "FAME_GLOBAL_QUEUE_BYTES": "4194304",
		"FAME_SLOW_CONSUMER_TIMEOUT_MS": "4000", "FAME_MAX_ROUTES": "20", "FAME_MAX_CAPABILITIES": "21", "FAME_MAX_KEYS": "22",
		"FAME_MAX_PENDING": "23", "FAME_MAX_CONNECTIONS": "24", "FAME_ATTACH_RATE": "25", "FAME_ATTACH_BURST": "26",
		"FAME_ATTACH_RATE_LOOPBACK": "true", "FAME_ADMIN_TOKEN": "env-token-0123456789", "FAME_DRAIN_TIMEOUT": "45s",
		"FAME_RATE_LIMIT_IDENTITY": "5", "FAME_RATE_LIMIT_IDENTITY_BURST": "6", "FAME_RATE_LIMIT_ADDRESS": "7", "FAME_RATE_LIMIT_ADDRESS_BURST": "8",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:4318/t",
		"OTEL_TRACES_SAMPLER_ARG": "0.25", "OTEL_SERVICE_NAME": "env",
		"FAME_GATEWAY": "off", "FAME_GATEWAY_ALLOWED_ORIGINS": "https://env.example, http://b.example:8080", "FAME_GATEWAY_BODY_LIMIT": "200",
		"FAME_GATEWAY_WELCOME_URL": "https://welcome.env:8090/hello",
		// template: the file's values stand
		"FAME_NODE_ID": "fromenv", "FAME_LISTENER_HOST": "127.0.0.8", "FAME_LISTENER_PORT": "9003",
		"FAME_SECURITY_PROFILE": "gated", "FAME_ADMISSION_PROFILE": "none", "FAME_DELIVERY_PROFILE": "at-most-once",
		"FAME_LOAD_BALANCING": "hrw", "FAME_STICKINESS_LEVEL": "sid-only",
	}
	for _, v := range config.Vars {
		if v.Mode != config.EnvOnly && strings.Contains(v.Applies, "sentinel") && v.Name != "FAME_STORAGE_PATH" &&
			v.Name != "FAME_STORAGE_PROFILE" && v.Name != "FAME_ROOT_LOGICAL" && v.Name != "FAME_PUBLIC_URL" &&
			!strings.HasPrefix(v.Name, "FAME_CLUSTER_") { // config.TestClusterConfig: they win over cluster:
			if _, ok := env[v.Name]; !ok {
				t.Errorf("%s is not exercised", v.Name)
			}
		}
	}
	o, err := LoadOptions(path, config.MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		ID: "fromfile", ListenOptions: ListenOptions{Host: "127.0.0.9", Port: 9002},
		ProfileOptions:    ProfileOptions{SecurityProfile: security.ProfileOverlay, AdmissionProfile: AdmissionOpen, DeliveryProfile: AtLeastOnce, LoadBalancing: LoadBalancingRandom},
		StickinessOptions: StickinessOptions{Stickiness: false, StickinessLevel: aft.LevelStrict},
		LogOptions:        LogOptions{LogFormat: "json", LogLevel: "debug"},
		LimitOptions: LimitOptions{SendQueue: 200, SendQueueBytes: 2 << 20, GlobalQueueBytes: 4 << 20, SlowConsumerTimeout: 4 * time.Second,
			MaxRoutes: 20, MaxCapabilities: 21, MaxKeys: 22, MaxPending: 23, MaxConnections: 24, AttachRate: 25, AttachBurst: 26, AttachRateLoopback: true,
			DrainTimeout: 45 * time.Second,
			RateLimits:   RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{5, 6}}, PerAddress: RateRule{Default: RateSpec{7, 8}}}},
		AdminOptions: AdminOptions{AdminToken: "env-token-0123456789"},
		Tracing:      tracing.Config{Endpoint: "http://env:4318", TracesEndpoint: "http://env:4318/t", SampleRatio: 0.25, ServiceName: "env"},
		Gateway: GatewayOptions{Enabled: false, AllowedOrigins: []string{"https://env.example", "http://b.example:8080"}, BodyLimit: 200,
			WelcomeURL: "https://welcome.env:8090/hello"},
	}
	got := want
	got.Gateway = o.Gateway
	got.ID, got.ListenOptions, got.ProfileOptions, got.LogOptions, got.AdminOptions = o.ID, o.ListenOptions, o.ProfileOptions, o.LogOptions, o.AdminOptions
	got.Tracing = o.Tracing
	got.Stickiness, got.StickinessLevel = o.Stickiness, o.StickinessLevel
	l := o.LimitOptions
	l.WriteTimeout, l.AttachTimeout, l.PingInterval, l.IdleTimeout = 0, 0, 0, 0
	got.LimitOptions = l
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestClusterConfig: a cluster block (or FAME_CLUSTER_*) resolves into Options.Cluster under
// the profiles the clustered router serves; a signing security profile and a missing node id
// are refused at load, with the reason, rather than run half-clustered.
func TestClusterConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tls := "data_dir: /tmp/n, tls: {cert: c.pem, key: k.pem, ca: ca.pem}, auth: {user: u, password: p}"
	ok := write("ok.yml", "node: {id: s1}\ncluster: {name: c, listen: 127.0.0.1:6222, "+tls+"}\n")
	o, err := LoadOptions(ok, config.MapEnv(nil))
	if err != nil {
		t.Fatalf("open profile with a cluster: %v", err)
	}
	if !o.Cluster.Enabled() || o.Cluster.Name != "c" || o.Cluster.SentinelID != "s1" {
		t.Errorf("Cluster = %+v, want enabled, name c, sentinel s1", o.Cluster)
	}
	for name, tc := range map[string]struct {
		path string
		env  map[string]string
		want string
	}{
		"overlay":   {write("ov.yml", "node: {id: s1, security: {profile: overlay}}\ncluster: {name: c, listen: 127.0.0.1:6222, "+tls+"}\n"), nil, "cannot run clustered yet"},
		"no id":     {write("noid.yml", "cluster: {name: c, listen: 127.0.0.1:6222, "+tls+"}\n"), nil, "needs a fixed id"},
		"env no id": {"", map[string]string{"FAME_CLUSTER_LISTEN": "127.0.0.1:6222", "FAME_CLUSTER_NAME": "c"}, "needs a fixed id"},
	} {
		_, err := LoadOptions(tc.path, config.MapEnv(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if o, err := LoadOptions("", config.MapEnv(nil)); err != nil || o.Cluster.Enabled() {
		t.Fatalf("no cluster: %v, %+v", err, o.Cluster)
	}
}

// FAME_CLUSTER_NAME or FAME_CLUSTER_ROUTES alone (neither listen nor url) is refused with the
// reason, not ignored: the operator meant a cluster.
func TestClusterPartialEnvRefused(t *testing.T) {
	for _, env := range []map[string]string{{"FAME_CLUSTER_NAME": "prod"}, {"FAME_CLUSTER_ROUTES": "nats-route://a:6222"}} {
		_, err := LoadOptions("", config.Getenv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
		if err == nil || !strings.Contains(err.Error(), "without listen") {
			t.Errorf("%v: %v, want a refusal naming the missing listen or url", env, err)
		}
	}
}
