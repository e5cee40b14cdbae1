package helm

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fame-go/fame/admission/ca"
	"github.com/fame-go/fame/admission/oauth2"
	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/sentinel"
)

// helmBinary finds helm: $HELM, the repository's bin/helm (`make helm-check` builds it there),
// or PATH. Absent, the test is skipped on a developer's machine and fails in CI.
func helmBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("HELM"), filepath.Join("..", "..", "bin", "helm")} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("helm not found ($HELM, bin/helm, PATH): CI must run `make helm-check`, which builds it")
	}
	t.Skip("helm not found ($HELM, bin/helm or PATH); `make helm-check` builds it into bin/")
	return ""
}

// Minimal shapes of the manifests the test reads.
type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path   string `yaml:"path"`
		Port   any    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
}

type container struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env            []envVar `yaml:"env"`
	LivenessProbe  *probe   `yaml:"livenessProbe"`
	ReadinessProbe *probe   `yaml:"readinessProbe"`
	StartupProbe   *probe   `yaml:"startupProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
				Containers                    []container `yaml:"containers"`
				Volumes                       []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

func render(t *testing.T, helm string, set ...string) []manifest {
	t.Helper()
	args := []string{"template", "rel", "fame"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, stderr.String())
	}
	var ms []manifest
	dec := yaml.NewDecoder(&out)
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered manifests: %v", err)
		}
		if m.Kind != "" {
			ms = append(ms, m)
		}
	}
	return ms
}

// scenarios are value sets covering every template branch.
var scenarios = map[string][]string{
	"open": nil,
	"overlay rate limits": {"profile=overlay", "adminToken.value=0123456789abcdef-admin",
		"sentinel.rateLimits.perIdentity.rate=100", "sentinel.rateLimits.perIdentity.burst=200",
		"sentinel.rateLimits.perIdentity.overrides.math-client.rate=10",
		"sentinel.rateLimits.perAddress.overrides.math@fame\\.fabric.rate=500"},
	"direct": {"profile=direct", "credentials.replicaClientSecret=s3cret-replicas", "adminToken.existingSecret=ops-admin",
		"agents.replicas=3"},
	"strict statefulset tls": {"profile=strict", "credentials.existingSecret=creds", "ca.existingSecret=fame-ca",
		"tls.existingSecret=fame-tls", "sentinel.kind=StatefulSet", "sentinel.persistence.enabled=true",
		"sentinel.drainTimeout=50s", "sentinel.preStopSleepSeconds=3", "adminToken.value=0123456789abcdef-admin"},
}

// knownVars are the FAME_* names config.Vars lists for a program kind ("sentinel", "node"),
// plus the given flag defaults of the fame command.
func knownVars(kind string, flags ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range config.Vars {
		if slices.Contains(strings.Split(v.Applies, ", "), kind) {
			m[v.Name] = true
		}
	}
	for _, f := range flags {
		m[f] = true
	}
	return m
}

// Flag defaults of `fame sentinel` and of the services (cmd/fame main.go, services.go).
var sentinelFlags = []string{"FAME_CONFIG", "FAME_TLS_CERT_FILE", "FAME_TLS_KEY_FILE"}
var serviceFlags = []string{"FAME_TLS_CERT_FILE", "FAME_TLS_KEY_FILE", "FAME_LOG_LEVEL"}

// recorder is a getenv over a container's env that records every name asked for.
type recorder struct {
	env  map[string]string
	seen map[string]bool
}

func (r *recorder) get(k string) string { r.seen[k] = true; return r.env[k] }

func TestChartMatchesBinaries(t *testing.T) {
	helm := helmBinary(t)
	mux := sentinelMux(t)
	for name, set := range scenarios {
		t.Run(name, func(t *testing.T) {
			ms := render(t, helm, set...)
			secrets := map[string]map[string]string{}
			configMaps := map[string]map[string]string{}
			for _, m := range ms {
				switch m.Kind {
				case "Secret":
					secrets[m.Metadata.Name] = m.StringData
				case "ConfigMap":
					configMaps[m.Metadata.Name] = m.Data
				}
			}
			external := map[string]bool{} // existingSecret names given in the scenario
			for _, s := range set {
				if k, v, _ := strings.Cut(s, "="); strings.HasSuffix(k, "existingSecret") {
					external[v] = true
				}
			}
			seen := map[string]int{}
			var sentinelDrain time.Duration
			var agents []manifest
			var agentDrains []time.Duration
			for _, m := range ms {
				if m.Kind != "Deployment" && m.Kind != "StatefulSet" {
					continue
				}
				for _, c := range m.Spec.Template.Spec.Containers {
					seen[c.Name]++
					env := resolveEnv(t, c, secrets, external)
					switch c.Name {
					case "sentinel":
						opts := checkSentinel(t, m, c, env, configMaps, mux)
						sentinelDrain = opts.DrainTimeout
						if name == "overlay rate limits" {
							rl := opts.RateLimits
							if rl.PerIdentity.Default != (sentinel.RateSpec{Rate: 100, Burst: 200}) ||
								rl.PerIdentity.Overrides["math-client"] != (sentinel.RateSpec{Rate: 10}) ||
								rl.PerAddress.Overrides["math@fame.fabric"] != (sentinel.RateSpec{Rate: 500}) {
								t.Errorf("sentinel.rateLimits values did not reach the sentinel: %+v", rl)
							}
						}
					case "math-agent":
						checkVars(t, c, knownVars("node"))
						env["FAME_CA_CERTS"] = "" // a mounted file from the CA's Secret
						cfg, err := config.NodeFrom(config.MapEnv(env))
						if err != nil {
							t.Errorf("math-agent env does not load: %v", err)
						}
						agents = append(agents, m)
						agentDrains = append(agentDrains, cfg.DrainTimeout)
					case "oauth2", "welcome", "ca":
						checkService(t, c, env)
					default:
						t.Errorf("container %q: unknown to this test", c.Name)
					}
				}
			}
			if seen["sentinel"] != 1 {
				t.Errorf("sentinel containers: %d, want 1", seen["sentinel"])
			}
			// A replica's SIGTERM drain waits for the sentinel, which moves its busy sessions
			// at its own drain timeout: the replica must wait longer, and Kubernetes longer still.
			for i, m := range agents {
				grace := m.Spec.Template.Spec.TerminationGracePeriodSeconds
				if agentDrains[i] <= sentinelDrain || grace == nil || time.Duration(*grace)*time.Second <= agentDrains[i] {
					t.Errorf("math-agent: drain timeout %v (must exceed the sentinel's %v) and grace period %v s (must exceed it)", agentDrains[i], sentinelDrain, grace)
				}
			}
		})
	}
}

// resolveEnv is a container's env as its process sees it: values, Secret keys (which must
// exist in a rendered Secret, or name an existingSecret the operator provides) and field refs.
func resolveEnv(t *testing.T, c container, secrets map[string]map[string]string, external map[string]bool) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if data, ok := secrets[ref.Name]; ok {
				v, ok := data[ref.Key]
				if !ok {
					t.Errorf("%s: %s reads key %q that Secret %s does not have", c.Name, e.Name, ref.Key, ref.Name)
				}
				env[e.Name] = v
			} else if external[ref.Name] {
				env[e.Name] = "existing:secret-0123456789" // id:secret shaped, for FAME_OAUTH2_CLIENTS
			} else {
				t.Errorf("%s: %s reads Secret %s, which is neither rendered nor an existingSecret", c.Name, e.Name, ref.Name)
			}
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "rel-fame-math-5d8f7c9b4-x2x7q" // a pod name
		}
	}
	return env
}

func checkVars(t *testing.T, c container, known map[string]bool) {
	t.Helper()
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "FAME_") && !known[e.Name] {
			t.Errorf("%s: env %s is not a variable it reads (config/vars.go)", c.Name, e.Name)
		}
	}
}

func port(t *testing.T, c container, name string) int {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("%s: no port named %q", c.Name, name)
	return 0
}

// checkProbe: an HTTP probe on the named port "http".
func checkProbe(t *testing.T, c container, what string, p *probe) string {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no %s HTTP probe", c.Name, what)
		return ""
	}
	if p.HTTPGet.Port != "http" {
		t.Errorf("%s: %s probe on port %v, want the container port named http", c.Name, what, p.HTTPGet.Port)
	}
	return p.HTTPGet.Path
}

func checkSentinel(t *testing.T, m manifest, c container, env map[string]string, configMaps map[string]map[string]string, mux http.Handler) sentinel.Options {
	t.Helper()
	checkVars(t, c, knownVars("sentinel", sentinelFlags...))
	// The rendered file, loaded as `fame sentinel -c` loads it, with the container's env.
	cfgPath := ""
	for i, a := range c.Command {
		if a == "-c" && i+1 < len(c.Command) {
			cfgPath = c.Command[i+1]
		}
	}
	if cfgPath == "" {
		t.Fatalf("sentinel command %v has no -c FILE", c.Command)
	}
	body := ""
	for _, vm := range c.VolumeMounts {
		if !strings.HasPrefix(cfgPath, vm.MountPath+"/") {
			continue
		}
		for _, v := range m.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				body = configMaps[v.ConfigMap.Name][strings.TrimPrefix(cfgPath, vm.MountPath+"/")]
			}
		}
	}
	if body == "" {
		t.Fatalf("sentinel config %s is not in a rendered ConfigMap", cfgPath)
	}
	f := filepath.Join(t.TempDir(), "sentinel.yml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if env["FAME_CA_CERTS"] != "" {
		env["FAME_CA_CERTS"] = "" // a mounted file; the file's contents are the CA's, not the chart's
	}
	opts, ignored, err := sentinel.Load(f, config.MapEnv(env))
	if err != nil && !strings.Contains(err.Error(), "FAME_CA_CERTS") {
		t.Fatalf("the rendered sentinel config does not load: %v\n%s", err, body)
	}
	if len(ignored) > 0 {
		t.Errorf("the rendered sentinel config has unknown keys: %v", ignored)
	}
	if got := port(t, c, "http"); got != opts.Port {
		t.Errorf("sentinel containerPort %d, but it listens on %d", got, opts.Port)
	}
	if a := m.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] == "true" &&
		(a["prometheus.io/port"] != strconv.Itoa(opts.Port) || a["prometheus.io/path"] != "/metrics") {
		t.Errorf("scrape annotations %v do not match port %d and /metrics", a, opts.Port)
	}
	// Every probe path answers on the sentinel's own mux (200, not 404).
	for what, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		path := checkProbe(t, c, what, p)
		if path == "" {
			continue
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s probe %s: the sentinel answers %d", what, path, rec.Code)
		}
	}
	if checkProbe(t, c, "readiness", c.ReadinessProbe) != "/readyz" {
		t.Errorf("readiness probe must be /readyz (503 while draining)")
	}
	// The grace period outlasts the preStop sleep and the drain.
	sleep := 0
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		sleep = c.Lifecycle.PreStop.Sleep.Seconds
	}
	grace := m.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= time.Duration(sleep)*time.Second+opts.DrainTimeout {
		t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %ds + drain_timeout %v", grace, sleep, opts.DrainTimeout)
	}
	if env["FAME_ADMIN_TOKEN"] != "" && opts.AdminToken == "" {
		t.Errorf("FAME_ADMIN_TOKEN set but not applied")
	}
	return opts
}

// checkService: an admission service's env holds only names its ConfigFromEnv (or the fame
// command's flags) reads, the config loads, and the container port is the one it listens on.
func checkService(t *testing.T, c container, env map[string]string) {
	t.Helper()
	r := &recorder{env: env, seen: map[string]bool{}}
	var listen string
	var err error
	switch c.Name {
	case "oauth2":
		var cfg oauth2.Config
		cfg, err = oauth2.ConfigFromEnv(r.get)
		listen = cfg.Port
	case "welcome":
		var cfg welcome.Config
		cfg, err = welcome.ConfigFromEnv(r.get)
		listen = cfg.Port
	case "ca":
		var cfg ca.Config
		cfg, err = ca.ConfigFromEnv(r.get)
		listen = cfg.Port
	}
	if err != nil {
		t.Errorf("%s: its env does not load: %v", c.Name, err)
	}
	cli := knownVars("", serviceFlags...)
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "FAME_") && !r.seen[e.Name] && !cli[e.Name] {
			t.Errorf("%s: env %s is not a variable fame %s reads", c.Name, e.Name, c.Name)
		}
	}
	if got := port(t, c, "http"); strconv.Itoa(got) != listen {
		t.Errorf("%s: containerPort %d, but it listens on %s", c.Name, got, listen)
	}
	// cmd/fame serves GET /healthz in front of every service (services.go withHealth).
	for what, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if path := checkProbe(t, c, what, p); path != "/healthz" {
			t.Errorf("%s: %s probe %q, want /healthz", c.Name, what, path)
		}
	}
}

// sentinelMux is the HTTP handler of a sentinel with default options (the routes do not
// depend on the profile).
func sentinelMux(t *testing.T) http.Handler {
	t.Helper()
	opts, err := sentinel.LoadOptions("", config.MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sentinel.New(opts, sentinel.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return s.Handler()
}

// TestChartRefusesBadValues: values the binaries would refuse fail at render time, with the
// setting named.
func TestChartRefusesBadValues(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"profile=paranoid"}, "profile"},
		{[]string{"profile=direct"}, "credentials.replicaClientSecret"},
		{[]string{"profile=strict", "credentials.existingSecret=c"}, "ca.existingSecret"},
		{[]string{"adminToken.value=short"}, "adminToken.value"},
		{[]string{"sentinel.kind=DaemonSet"}, "sentinel.kind"},
		{[]string{"sentinel.persistence.enabled=true"}, "StatefulSet"},
		{[]string{"sentinel.drainTimeout=1m"}, "drainTimeout"},
		{[]string{"rootLogical=example.org"}, "rootLogical"},
	} {
		args := []string{"template", "rel", "fame"}
		for _, s := range c.set {
			args = append(args, "--set", s)
		}
		out, err := exec.Command(helm, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: err %v, output %q; want a failure naming %s", c.set, err, out, c.want)
		}
	}
}
