//go:build interop

package interop

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var recordFlag = flag.String("record", "", "keep every process's stdout/stderr per case under this directory (env INTEROP_RECORD)")

// Bounds on every wait; the machine is small (2 cores shared with other work) and Node is slow to start.
const (
	readyTimeout  = 60 * time.Second
	clientTimeout = 120 * time.Second
	npmTimeout    = 10 * time.Minute
	buildTimeout  = 10 * time.Minute
)

// Paths, resolved once in TestMain. The test binary runs in the package directory (interop/).
var (
	interopDir string
	repoRoot   string
	binDir     string
	recordRoot string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		wd, err := os.Getwd()
		if err != nil {
			fmt.Fprintln(os.Stderr, "interop: getwd:", err)
			return 1
		}
		interopDir = wd
		repoRoot = filepath.Dir(wd)
		binDir, err = os.MkdirTemp("", "fame-interop-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "interop: temp dir:", err)
			return 1
		}
		defer os.RemoveAll(binDir)
		recordRoot = *recordFlag
		if recordRoot == "" {
			recordRoot = os.Getenv("INTEROP_RECORD")
		}
		if recordRoot != "" {
			if recordRoot, err = filepath.Abs(recordRoot); err != nil {
				fmt.Fprintln(os.Stderr, "interop: record dir:", err)
				return 1
			}
		}
		code := m.Run()
		printSummary()
		return code
	}()
	os.Exit(code)
}

// ---- per-case bookkeeping and the summary table ----

type caseResult struct {
	name     string
	status   string
	duration time.Duration
}

var (
	resultsMu sync.Mutex
	results   []caseResult
)

func printSummary() {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(results) == 0 {
		return
	}
	// Order by case number, not by the parallel group ("long"/"main") the case runs in.
	caseKey := func(name string) string {
		parts := strings.SplitN(name, "/", 3)
		return parts[len(parts)-1]
	}
	sort.SliceStable(results, func(i, j int) bool { return caseKey(results[i].name) < caseKey(results[j].name) })
	width := len("case")
	for _, r := range results {
		width = max(width, len(r.name))
	}
	var total time.Duration
	fmt.Printf("\ninterop summary\n%-*s  %-6s  %10s\n", width, "case", "result", "duration")
	for _, r := range results {
		fmt.Printf("%-*s  %-6s  %10s\n", width, r.name, r.status, r.duration.Round(100*time.Millisecond))
		total += r.duration
	}
	fmt.Printf("%-*s  %-6s  %10s (sum; parallel cases overlap)\n", width, "", "", total.Round(100*time.Millisecond))
}

// caseEnv is one leaf case: the processes it started and where their output is recorded.
type caseEnv struct {
	t         *testing.T
	recordDir string
	procs     []*proc
	seq       int
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// newCase registers, in this order, the summary entry (runs last) and the output dump on failure
// (runs after every process of the case has been killed, since cleanups run last-in first-out).
func newCase(t *testing.T) *caseEnv {
	t.Helper()
	start := time.Now()
	t.Cleanup(func() {
		status := "PASS"
		switch {
		case t.Failed():
			status = "FAIL"
		case t.Skipped():
			status = "SKIP"
		}
		resultsMu.Lock()
		results = append(results, caseResult{name: t.Name(), status: status, duration: time.Since(start)})
		resultsMu.Unlock()
	})
	c := &caseEnv{t: t}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range c.procs {
				p.dump(t)
			}
		}
	})
	if recordRoot != "" {
		c.recordDir = filepath.Join(recordRoot, unsafeName.ReplaceAllString(t.Name(), "_"))
		if err := os.MkdirAll(c.recordDir, 0o755); err != nil {
			t.Fatalf("record dir: %v", err)
		}
	}
	return c
}

// uniqueSalt gives each TS process of a case its own fingerprint id: two processes started from
// the same script on one host otherwise get the same system id and the sentinel rejects one.
func (c *caseEnv) uniqueSalt(name string) string {
	c.seq++
	return fmt.Sprintf("FAME_NODE_ID_SALT=%s-%s-%d-%d", unsafeName.ReplaceAllString(c.t.Name(), "_"), name, c.seq, time.Now().UnixNano())
}

// ---- environment ----

// childKeys are variables the harness sets explicitly; inherited values would change behaviour.
var childKeys = []string{"AGENT_NAME", "MATH_LOGICAL", "MATH_ADDRESS", "WHOAMI", "CONCURRENCY", "SLEEP_BEFORE_MS", "REPEAT", "REPEAT_GAP_MS"}

func baseEnv() []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FAME_") {
			continue
		}
		for _, k := range childKeys {
			if strings.HasPrefix(kv, k+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

func freePort(t *testing.T) int {
	t.Helper()
	// A port from the kernel's ephemeral range (":0") can be taken as the source port of any
	// outgoing connection between our release and the peer's bind: the reference Python
	// sentinel then fails with "address already in use". Ports below the ephemeral range
	// (32768 on Linux) are only ever taken by listeners, so pick one there, bindable on all
	// interfaces (the reference binds 0.0.0.0), and never hand the same one out twice.
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return p
	}
	t.Fatalf("free port: none free in 20000-31999")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

func attachURL(port int) string {
	return fmt.Sprintf("ws://127.0.0.1:%d/fame/v1/attach/ws/downstream", port)
}

// ---- prerequisites: Node packages and Go binaries, each prepared once per run ----

var (
	npmOnce sync.Once
	npmErr  error
)

// needNode makes sure node is on PATH and interop/node_modules is installed from the lock file.
func needNode(t *testing.T) {
	t.Helper()
	npmOnce.Do(func() {
		if _, err := exec.LookPath("node"); err != nil {
			npmErr = fmt.Errorf("node not on PATH (Node 20 is required): %w", err)
			return
		}
		version, err := exec.Command("node", "--version").Output()
		if err != nil {
			npmErr = fmt.Errorf("node --version: %w", err)
			return
		}
		var major int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(version)), "v%d.", &major); err != nil || major < 20 {
			npmErr = fmt.Errorf("node %s: Node 20 or newer is required", strings.TrimSpace(string(version)))
			return
		}
		installed := true
		for _, pkg := range []string{"@naylence/runtime", "@naylence/agent-sdk", "@naylence/core", "ws"} {
			if _, err := os.Stat(filepath.Join(interopDir, "node_modules", pkg, "package.json")); err != nil {
				installed = false
			}
		}
		if installed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = interopDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			npmErr = fmt.Errorf("npm ci in %s: %w\n%s", interopDir, err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
}

// goBinary is one of our binaries, built on first use (once per run) into binDir.
type goBinary struct {
	name string   // file name in binDir
	pkgs []string // candidate package directories, first existing one wins
	once sync.Once
	path string
	err  error
}

var (
	fameBin   = &goBinary{name: "fame", pkgs: []string{"./cmd/fame"}}
	agentBin  = &goBinary{name: "math-agent", pkgs: []string{"./examples/math/agent", "./examples/math/math-agent"}}
	clientBin = &goBinary{name: "math-client", pkgs: []string{"./examples/math/client", "./examples/math/math-client"}}
)

// need returns the binary's path, building it from the repository root the first time.
func (b *goBinary) need(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "/usr/local/go/bin/go"
		}
		pkg, err := firstGoPackage(b.pkgs)
		if err != nil {
			b.err = err
			return
		}
		out := filepath.Join(binDir, b.name)
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
		cmd.Dir = repoRoot
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build -o %s %s: %w\n%s", out, pkg, err, msg)
			return
		}
		b.path = out
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// firstGoPackage returns the first candidate directory (relative to the repository root) that
// holds Go files: the brief names examples/math/agent, the Makefile examples/math/math-agent.
func firstGoPackage(candidates []string) (string, error) {
	for _, pkg := range candidates {
		matches, _ := filepath.Glob(filepath.Join(repoRoot, pkg, "*.go"))
		if len(matches) > 0 {
			return pkg, nil
		}
	}
	return "", fmt.Errorf("none of %v (under %s) holds a Go package yet", candidates, repoRoot)
}

// ---- starting the processes of a case ----

func node(script string) []string {
	return []string{"node", filepath.Join(interopDir, script)}
}

// fameSentinel starts our sentinel on a free port and waits for GET /healthz to return 200.
// When recording, it also asks for the envelope dump.
//
// INTEROP_STANDIN_SENTINEL=ts replaces it with the reference TS sentinel: a self-check of the
// harness and the Node side, and a way to tell whether a failure is specific to fame-go. Cases
// that need fame-only features (stickiness, round robin) are expected to fail in that mode.
func (c *caseEnv) fameSentinel(env ...string) int {
	c.t.Helper()
	if os.Getenv("INTEROP_STANDIN_SENTINEL") == "ts" {
		c.t.Log("INTEROP_STANDIN_SENTINEL=ts: the reference TS sentinel stands in for fame sentinel")
		return c.tsSentinel(env...)
	}
	fame := fameBin.need(c.t)
	port := freePort(c.t)
	env = append([]string{"FAME_LISTENER_HOST=127.0.0.1", fmt.Sprintf("FAME_LISTENER_PORT=%d", port)}, env...)
	if c.recordDir != "" {
		env = append(env, "FAME_SHOW_ENVELOPES=true")
	}
	p := startProc(c.t, c, "fame-sentinel", repoRoot, []string{fame, "sentinel"}, env)
	if err := waitHTTP200(p, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), readyTimeout); err != nil {
		c.t.Fatal(err)
	}
	return port
}

// tsSentinel starts the reference TS sentinel and waits for its READY line.
func (c *caseEnv) tsSentinel(env ...string) int {
	c.t.Helper()
	needNode(c.t)
	port := freePort(c.t)
	env = append([]string{"FAME_LISTENER_HOST=127.0.0.1", fmt.Sprintf("FAME_LISTENER_PORT=%d", port)}, env...)
	p := startProc(c.t, c, "ts-sentinel", interopDir, node("ts-sentinel.mjs"), env)
	c.waitReady(p)
	return port
}

// tsAgent starts a TS math agent named name (whoami answers it) attached to the sentinel on port.
func (c *caseEnv) tsAgent(name string, port int, env ...string) *proc {
	c.t.Helper()
	needNode(c.t)
	env = append([]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name), "AGENT_NAME=" + name}, env...)
	p := startProc(c.t, c, name, interopDir, node("ts-agent.mjs"), env)
	c.waitReady(p)
	return p
}

// goAgent starts our math agent named name attached to the sentinel on port.
func (c *caseEnv) goAgent(name string, port int, env ...string) *proc {
	c.t.Helper()
	agent := agentBin.need(c.t)
	env = append([]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name), "AGENT_NAME=" + name}, env...)
	p := startProc(c.t, c, name, repoRoot, []string{agent}, env)
	c.waitReady(p)
	return p
}

// startTSClient starts a TS client without waiting for it.
func (c *caseEnv) startTSClient(name string, port int, env ...string) *proc {
	c.t.Helper()
	needNode(c.t)
	env = append([]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name)}, env...)
	return startProc(c.t, c, name, interopDir, node("ts-client.mjs"), env)
}

// startGoClient starts our math client without waiting for it.
func (c *caseEnv) startGoClient(name string, port int, args []string, env ...string) *proc {
	c.t.Helper()
	client := clientBin.need(c.t)
	env = append([]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name)}, env...)
	return startProc(c.t, c, name, repoRoot, append([]string{client}, args...), env)
}

// tsClient runs a TS client to completion and requires exit code 0.
func (c *caseEnv) tsClient(name string, port int, env ...string) *proc {
	c.t.Helper()
	p := c.startTSClient(name, port, env...)
	c.requireExit0(p, clientTimeout)
	return p
}

// goClient runs our math client to completion and requires exit code 0.
func (c *caseEnv) goClient(name string, port int, args []string, env ...string) *proc {
	c.t.Helper()
	p := c.startGoClient(name, port, args, env...)
	c.requireExit0(p, clientTimeout)
	return p
}

func (c *caseEnv) waitReady(p *proc) {
	c.t.Helper()
	if _, err := p.waitLine(readyTimeout, "READY", func(l string) bool { return strings.TrimSpace(l) == "READY" }); err != nil {
		c.t.Fatal(err)
	}
}

func (c *caseEnv) requireExit0(p *proc, timeout time.Duration) {
	c.t.Helper()
	code, err := p.waitExit(timeout)
	if err != nil {
		c.t.Fatal(err)
	}
	if code != 0 {
		c.t.Fatalf("%s exited with code %d (%v), want 0", p.name, code, p.waitErr)
	}
}

// waitHTTP200 polls url until it answers 200, the process exits or timeout passes.
func waitHTTP200(p *proc, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before %s answered 200", p.name, p.waitErr, url)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s not 200 within %v (last: %v)", p.name, url, timeout, last)
}
