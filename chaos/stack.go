package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fame-go/fame/internal/loopport"
)

// The stack the harness runs: in the strict profile the reference example's strict-overlay
// deployment (our fame oauth2, fame welcome and fame ca, a fame sentinel admitting through
// welcome and verifying SPIFFE chains, channel encryption, AFT stickiness at level strict),
// in the overlay profile a sentinel with signed envelopes, channel encryption and open
// admission. Everything listens on loopback in plain HTTP; the sentinel keeps its bindings in
// a bbolt file and has a fixed node id, so a restart finds the sessions where they were.

const (
	sentinelID      = "ChaosSentinel01"
	adminToken      = "chaos-admin-token-5b1e0c77d2a9"
	replicaClient   = "chaos-replicas"
	replicaSecret   = "s-chaos-replicas"
	callerClient    = "chaos-callers"
	callerSecret    = "s-chaos-callers"
	audience        = "fame.fabric"
	ticketIssuer    = "https://welcome/fame/welcome"
	readyTimeout    = 30 * time.Second
	replicaPrefix   = "math-replica"
	drainTimeoutEnv = "10s"
	// The replicas wait longer than the sentinel: at its drain timeout the sentinel moves the
	// sessions still busy, and the replica must outlive that to finish what they had in
	// flight. With equal timeouts (both default to 30 s) a replica whose sessions never go
	// idle exits at the very moment the sentinel moves them, cutting their calls.
	replicaDrainTimeoutEnv = "20s"
)

// stack holds the processes and the environment every node needs.
type stack struct {
	cfg       Config
	dir       string
	services  []*proc // oauth2, welcome, ca (strict)
	sentinel  *proc
	replicas  []*proc // replica i serves as AGENT_NAME replica<i+1>, FAME_NODE_ID math-replica<i+1>
	execLogs  []string
	nodeEnv   map[string]string // the callers' environment (config.NodeFrom)
	port      int
	http      *http.Client
	sentinelB string // http://127.0.0.1:port
}

// freePort is a loopback port for a process of the stack, below the kernel's ephemeral
// range: a killed sentinel is restarted on its port, which an outgoing connection must not
// have taken meanwhile (internal/loopport).
func freePort() (int, error) {
	ps, err := loopport.Free(1)
	if err != nil {
		return 0, fmt.Errorf("chaos: free port: %w", err)
	}
	return ps[0], nil
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func mergeEnv(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// startStack starts the services, the sentinel and the replicas, each waited for.
func startStack(ctx context.Context, cfg Config, dir string) (*stack, error) {
	s := &stack{cfg: cfg, dir: dir, http: &http.Client{Timeout: 3 * time.Second}}
	logs := filepath.Join(dir, "logs")
	var err error
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	s.sentinelB = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	attach := fmt.Sprintf("ws://127.0.0.1:%d/fame/v1/attach/ws/downstream", s.port)
	var profile, replicaCred, callerCred map[string]string
	sentinelEnv := map[string]string{
		"FAME_NODE_ID": sentinelID, "FAME_LISTENER_HOST": "127.0.0.1", "FAME_LISTENER_PORT": fmt.Sprint(s.port),
		"FAME_STORAGE_PROFILE": "bbolt", "FAME_STORAGE_PATH": filepath.Join(dir, "bindings.db"),
		"FAME_ADMIN_TOKEN": adminToken, "FAME_STICKINESS_LEVEL": "strict", "FAME_DRAIN_TIMEOUT": drainTimeoutEnv,
		"FAME_LOG_LEVEL": "info", "FAME_DELIVERY_PROFILE": "at-least-once",
	}
	switch cfg.Profile {
	case "strict":
		caDir := filepath.Join(dir, "ca")
		if out, err := exec.CommandContext(ctx, cfg.FameBin, "ca", "init", "-dir", caDir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chaos: fame ca init: %v: %s", err, out)
		}
		root := filepath.Join(caDir, "root-ca.crt")
		var po, pw, pc int
		for _, p := range []*int{&po, &pw, &pc} {
			if *p, err = freePort(); err != nil {
				return nil, err
			}
		}
		oauthURL := fmt.Sprintf("http://127.0.0.1:%d", po)
		welcomeURL := fmt.Sprintf("http://127.0.0.1:%d", pw)
		caURL := fmt.Sprintf("http://127.0.0.1:%d", pc)
		jwks := welcomeURL + "/fame/welcome/.well-known/jwks.json"
		oauth := &proc{name: "oauth2", logDir: logs, argv: []string{cfg.FameBin, "oauth2", "-listen", fmt.Sprintf("127.0.0.1:%d", po)},
			env: envList(map[string]string{"FAME_JWT_ISSUER": oauthURL, "FAME_JWT_AUDIENCE": audience, "FAME_JWT_ALLOWED_SCOPES": "node.connect",
				"FAME_OAUTH2_CLIENTS": replicaClient + ":" + replicaSecret + "," + callerClient + ":" + callerSecret})}
		welcome := &proc{name: "welcome", logDir: logs, argv: []string{cfg.FameBin, "welcome", "-listen", fmt.Sprintf("127.0.0.1:%d", pw)},
			env: envList(map[string]string{"FAME_WELCOME_TARGET_SYSTEM_ID": sentinelID, "FAME_WELCOME_ATTACH_URL": attach,
				"FAME_CA_SERVICE_URL": caURL + "/fame/v1/ca", "FAME_WELCOME_ISSUER": ticketIssuer,
				// As the compose stack: the replicas may be math-replica* and serve the math
				// domain; the callers get any other id and no logicals.
				"FAME_WELCOME_GRANTS":     "sub=" + replicaClient + " system_ids=" + replicaPrefix + "* logicals=*.fame.fabric; sub=" + callerClient + " system_ids=*",
				"FAME_JWT_TRUSTED_ISSUER": oauthURL, "FAME_JWT_AUDIENCE": audience})}
		caP := &proc{name: "ca", logDir: logs, argv: []string{cfg.FameBin, "ca", "-dir", caDir, "-listen", fmt.Sprintf("127.0.0.1:%d", pc)},
			env: envList(map[string]string{"FAME_CA_CERTS": root, "FAME_CA_TRUSTED_ISSUER": ticketIssuer, "FAME_CA_JWKS_URL": jwks})}
		for _, sv := range []struct {
			p      *proc
			health string
		}{{oauth, oauthURL + "/healthz"}, {welcome, welcomeURL + "/healthz"}, {caP, caURL + "/fame/v1/ca/health"}} {
			in, err := sv.p.start("")
			if err != nil {
				return s, err
			}
			s.services = append(s.services, sv.p)
			if err := s.waitHTTP(ctx, in, sv.health, ""); err != nil {
				return s, err
			}
		}
		profile = map[string]string{"FAME_SECURITY_PROFILE": "strict-overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL": "channel",
			"FAME_ADMISSION_PROFILE": "welcome", "FAME_JWT_AUDIENCE": audience, "FAME_CA_CERTS": root}
		sentinelEnv = mergeEnv(sentinelEnv, profile, map[string]string{"FAME_JWT_TRUSTED_ISSUER": ticketIssuer, "FAME_JWKS_URL": jwks})
		cred := func(id, secret string) map[string]string {
			return mergeEnv(profile, map[string]string{"FAME_ADMISSION_SERVICE_URL": welcomeURL + "/fame/v1/welcome/hello",
				"FAME_ADMISSION_TOKEN_URL": oauthURL + "/oauth/token", "FAME_ADMISSION_CLIENT_ID": id, "FAME_ADMISSION_CLIENT_SECRET": secret})
		}
		replicaCred, callerCred = cred(replicaClient, replicaSecret), cred(callerClient, callerSecret)
	case "overlay":
		profile = map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL": "channel", "FAME_ADMISSION_PROFILE": "open"}
		sentinelEnv = mergeEnv(sentinelEnv, profile)
		replicaCred = mergeEnv(profile, map[string]string{"FAME_DIRECT_ADMISSION_URL": attach})
		callerCred = replicaCred
	default:
		return nil, fmt.Errorf("chaos: unknown profile %q (strict or overlay)", cfg.Profile)
	}
	if cfg.ReplayCache > 0 {
		rc := map[string]string{"FAME_REPLAY_CACHE_SIZE": fmt.Sprint(cfg.ReplayCache)}
		replicaCred, callerCred = mergeEnv(replicaCred, rc), mergeEnv(callerCred, rc)
		// The replicas' reply cache (node/replies.go: replies kept for re-sent requests)
		// is sized like the replay guard, for the same reason: so that it is full within the
		// warm-up whatever the replica's load, and holds steady after. 1,024 requests are
		// ~17 s of one replica's share of the load (~5 s with all of it), longer than the
		// callers' re-sends take (< 4 s after a fault); an older re-send, still recognised
		// by the node's id dedupe (4,096), gets a REPLY_NOT_KEPT nack, not a second run. Bound by a 20 s TTL instead (fd6cc3f) it grew while sessions moved
		// onto the replica from killed ones (CI 00:58 UTC 2026-12-05: replica1 25.8 -> 30.1
		// MiB, +16.9 %; +1.6 % with the cache off); by 1 MiB it still filled after the
		// warm-up (+8.1 %, 01:35 UTC).
		replicaCred = mergeEnv(replicaCred, map[string]string{"FAME_REPLY_CACHE_SIZE": fmt.Sprint(cfg.ReplayCache)})
	}
	s.nodeEnv = callerCred
	s.sentinel = &proc{name: "sentinel", logDir: logs, argv: []string{cfg.FameBin, "sentinel"}, env: envList(sentinelEnv),
		metrics: s.sentinelB + "/metrics", token: adminToken}
	if err := s.startSentinel(ctx); err != nil {
		return s, err
	}
	for i := range cfg.Replicas {
		mport, err := freePort()
		if err != nil {
			return s, err
		}
		log := filepath.Join(dir, fmt.Sprintf("exec-replica%d.jsonl", i+1))
		s.execLogs = append(s.execLogs, log)
		env := mergeEnv(replicaCred, map[string]string{"AGENT_NAME": fmt.Sprintf("replica%d", i+1),
			"FAME_NODE_ID": fmt.Sprintf("%s%d", replicaPrefix, i+1), "FAME_DRAIN_TIMEOUT": replicaDrainTimeoutEnv,
			// Replies ask for an ack and are re-sent until acknowledged: a reply lost with a
			// killed sentinel is delivered after the restart (an at-most-once replica cannot
			// answer the caller's re-send, which it recognises and does not run again).
			"FAME_DELIVERY_PROFILE": "at-least-once",
			"MATH_EXEC_LOG":         log, "MATH_METRICS_ADDR": fmt.Sprintf("127.0.0.1:%d", mport)})
		p := &proc{name: fmt.Sprintf("replica%d", i+1), logDir: logs, argv: []string{cfg.AgentBin}, env: envList(env),
			metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", mport), goroutineProfile: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", mport)}
		s.replicas = append(s.replicas, p)
		if err := s.startReplica(ctx, i); err != nil {
			return s, err
		}
	}
	return s, nil
}

// replicaID is the system id of replica i.
func replicaID(i int) string { return fmt.Sprintf("%s%d", replicaPrefix, i+1) }

// replicaName is what replica i answers as (its AGENT_NAME, in the execution log).
func replicaName(i int) string { return fmt.Sprintf("replica%d", i+1) }

func (s *stack) startSentinel(ctx context.Context) error {
	in, err := s.sentinel.start("")
	if err != nil {
		return err
	}
	return s.waitHTTP(ctx, in, s.sentinelB+"/readyz", "")
}

// startReplica starts replica i and waits until it printed READY and the sentinel lists its
// address (attached and bound).
func (s *stack) startReplica(ctx context.Context, i int) error {
	in, err := s.replicas[i].start("READY")
	if err != nil {
		return err
	}
	if err := in.waitReady(ctx, readyTimeout); err != nil {
		return err
	}
	return s.waitBound(ctx, i, readyTimeout)
}

// waitBound waits until the sentinel's /stats lists replica i's own address.
func (s *stack) waitBound(ctx context.Context, i int, timeout time.Duration) error {
	want := "math@" + replicaID(i) + ".fame.fabric"
	deadline := time.Now().Add(timeout)
	for {
		body, err := s.get(ctx, s.sentinelB+"/stats", adminToken)
		if err == nil && strings.Contains(body, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: the sentinel does not list %s after %s (last error: %v)", want, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *stack) get(ctx context.Context, url, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("chaos: GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// waitHTTP waits until url answers 200 or the instance exits.
func (s *stack) waitHTTP(ctx context.Context, in *instance, url, token string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if !in.alive() {
			return fmt.Errorf("chaos: %s exited before %s answered: %s", in.proc.name, url, in.how())
		}
		if _, err := s.get(ctx, url, token); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s: %s not ready after %s: %w", in.proc.name, url, readyTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// drainReplica asks the sentinel to drain replica i (POST /admin/replicas/{id}/drain).
func (s *stack) drainReplica(ctx context.Context, i int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.sentinelB+"/admin/replicas/"+replicaID(i)+"/drain", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: drain %s: %w", replicaID(i), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("chaos: drain %s: %s: %s", replicaID(i), resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// goroutines reads go_goroutines from a /metrics body.
func goroutines(body string) (int, error) {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			var f float64
			if err := json.Unmarshal([]byte(strings.TrimSpace(rest)), &f); err != nil {
				return 0, fmt.Errorf("chaos: go_goroutines %q: %w", rest, err)
			}
			return int(f), nil
		}
	}
	return 0, fmt.Errorf("chaos: no go_goroutines in /metrics")
}

// residentWorkerFrame is the SDK's handler worker (node/workers.go): a node keeps up to 32 of
// them resident, as many as its busiest moment needed, so a replica's goroutine count steps
// up with the sessions pinned to it (replica2 of a 2-minute run: 25 under load, 33 once a
// SIGSTOP moved replica1's sessions to it, still 33 with the load stopped) and stays there:
// a bounded pool, like the replay guard for RSS, not a leak. Running handlers are in flight,
// not leaked, either. A replica's goroutines are counted without them.
const residentWorkerFrame = "/node.(*Node).worker+"

// sampleAll records RSS and goroutines of every live instance.
func (s *stack) sampleAll(ctx context.Context) {
	procs := append(append([]*proc{s.sentinel}, s.replicas...), s.services...)
	for _, p := range procs {
		in := p.current()
		if in == nil {
			continue
		}
		s.sampleOne(ctx, in)
	}
}

// sampleOne records RSS and goroutines of in, unless it has exited or is stopped; the
// harness also calls it right before it kills or drains an instance, so that every instance
// is judged over its own lifetime (report.go, procInfo).
func (s *stack) sampleOne(ctx context.Context, in *instance) (sample, bool) {
	if !in.alive() || in.isStopped() {
		return sample{}, false
	}
	sm := sample{At: time.Now(), Goroutines: -1}
	rss, err := readRSS(in.pid)
	if err != nil {
		return sample{}, false
	}
	sm.RSSBytes = rss
	if p := in.proc; p.goroutineProfile != "" {
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if body, err := s.get(mctx, p.goroutineProfile, ""); err == nil && strings.Contains(body, "goroutine profile:") {
			sm.Goroutines = countGoroutines(body, residentWorkerFrame)
		}
		cancel()
	} else if p.metrics != "" {
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if body, err := s.get(mctx, p.metrics, p.token); err == nil {
			if g, err := goroutines(body); err == nil {
				sm.Goroutines = g
			}
		}
		cancel()
	}
	in.addSample(sm)
	return sm, true
}

// stopAll ends every process (replicas first, together, then the sentinel and the services).
func (s *stack) stopAll() {
	var wg sync.WaitGroup
	for _, p := range s.replicas {
		if in := p.current(); in != nil {
			wg.Add(1)
			go func() { defer wg.Done(); in.end(15 * time.Second) }()
		}
	}
	wg.Wait()
	if s.sentinel != nil {
		if in := s.sentinel.current(); in != nil {
			in.end(15 * time.Second)
		}
	}
	for _, p := range s.services {
		if in := p.current(); in != nil {
			in.end(5 * time.Second)
		}
	}
}
