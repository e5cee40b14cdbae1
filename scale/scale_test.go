//go:build scale

package scale

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/stickiness"
)

// The knobs of `make scale` (environment, read by the test only).
var (
	idleNodes = envInt("SCALE_NODES", 10000)                   // idle nodes attached
	hbPeriod  = envDuration("SCALE_HEARTBEAT", 15*time.Second) // each idle node's heartbeat interval (the SDKs' 15 s)
	calls     = envInt("SCALE_CALLS", 2000)                    // sequential calls of the active client, per p99
	attachers = envInt("SCALE_ATTACHERS", 64)                  // concurrent attaches
)

// overFloor is the budget: an idle node may cost the sentinel at most this much more than a
// bare coder/websocket connection with one reader goroutine (the floor, measured in the same run).
const overFloor = 4 << 10

// maxGoroutinesPerNode: an idle connection is served by its reader alone; writers exist only
// while something is being sent (a few heartbeat acks at any instant).
const maxGoroutinesPerNode = 1.1

// perSourceAddr is how many connections one loopback source address carries: well inside the
// ephemeral port range (32768–60999 by default), so that the kernel finds a free port at once
// even beside the TIME_WAIT sockets of the previous run.
const perSourceAddr = 4000

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return d
}

func envDuration(k string, d time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return d
}

// TestMain runs the floor server instead of the tests when the floor test re-executes this
// binary (SCALE_FLOOR_ADDR_FILE set): the floor must be a process of its own so that its RSS is
// measured alone, like the sentinel's.
func TestMain(m *testing.M) {
	if f := os.Getenv("SCALE_FLOOR_ADDR_FILE"); f != "" {
		if err := runFloor(f); err != nil {
			fmt.Fprintln(os.Stderr, "floor server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runFloor serves bare coder/websocket connections, one reader goroutine each (net/http's),
// answering each message with a short one, as the sentinel answers attach and heartbeats.
func runFloor(addrFile string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/fame/", func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled, InsecureSkipVerify: true})
		if err != nil {
			return
		}
		ws.SetReadLimit(envelope.MaxMessageSize)
		defer ws.CloseNow()
		for {
			_, msg, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			reply := `{"frame":{"type":"NodeHeartbeatAck","ok":true}}`
			if strings.Contains(string(msg), `"NodeAttach"`) {
				reply = `{"frame":{"type":"NodeAttachAck","ok":true}}`
			}
			if err := ws.Write(context.Background(), websocket.MessageBinary, []byte(reply)); err != nil {
				return
			}
		}
	})
	if err := os.WriteFile(addrFile, []byte(l.Addr().String()), 0o600); err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(l)
}

// raiseNoFile lifts this process's descriptor limit (inherited by the processes it starts) to
// what n connections need, or fails saying why it cannot.
func raiseNoFile(t *testing.T, n int) {
	t.Helper()
	need := uint64(n) + 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		lim.Max = need // only a privileged process (CAP_SYS_RESOURCE) may raise the hard limit
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		var cur syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur)
		t.Fatalf("%d nodes need %d file descriptors per process; the limit is %d (hard %d) and cannot be raised: %v",
			n, need, cur.Cur, cur.Max, err)
	}
}

// proc is a child process serving HTTP on the address it writes to its address file.
type proc struct {
	cmd  *exec.Cmd
	base string // http://host:port
	addr string
}

func startProc(t *testing.T, cmd *exec.Cmd, addrFile string) *proc {
	t.Helper()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd}
	t.Cleanup(p.stop)
	for i := 0; i < 200 && p.addr == ""; i++ {
		b, _ := os.ReadFile(addrFile)
		p.addr = strings.TrimSpace(string(b))
		time.Sleep(50 * time.Millisecond)
	}
	if p.addr == "" {
		t.Fatalf("%s did not start", cmd.Path)
	}
	p.base = "http://" + p.addr
	return p
}

func (p *proc) stop() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// rss returns the process's resident set size in bytes.
func (p *proc) rss(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func (p *proc) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(b)
}

// usage is a process's memory and goroutines at one moment, after a forced GC.
type usage struct {
	rss, heapInuse, stackInuse int64
	goroutines                 int
}

// measure forces a GC in the process (pprof's heap?gc=1), lets it settle and reads its RSS,
// heap and stacks in use and goroutine count. With SCALE_PROFILE_DIR set, the heap profile is
// kept there as <label>.heap.
func (p *proc) measure(t *testing.T, label string) usage {
	t.Helper()
	// Two GCs: what sync.Pools held survives the first in their victim caches (the attach
	// storm's buffers: up to 0.7 KiB of heap and 3 KiB of RSS per node in one run of two).
	p.get(t, "/debug/pprof/heap?gc=1&debug=1")
	text := p.get(t, "/debug/pprof/heap?gc=1&debug=1")
	if dir := os.Getenv("SCALE_PROFILE_DIR"); dir != "" {
		resp, err := http.Get(p.base + "/debug/pprof/heap?gc=1")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = os.WriteFile(filepath.Join(dir, label+".heap"), b, 0o644)
		}
	}
	time.Sleep(time.Second)
	u := usage{rss: p.rss(t)}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			u.heapInuse, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			u.stackInuse, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	g := p.get(t, "/debug/pprof/goroutine?debug=1")
	first, _, _ := strings.Cut(g, "\n")
	if _, err := fmt.Sscanf(first, "goroutine profile: total %d", &u.goroutines); err != nil {
		t.Fatalf("goroutine count from %q: %v", first, err)
	}
	return u
}

// srcAddr is the loopback source address of connection i of a phase: phases use distinct
// addresses so that one's TIME_WAIT sockets never meet the next one's ports.
func srcAddr(phase, i int) net.IP { return net.IPv4(127, byte(phase), 0, byte(2+i/perSourceAddr)) }

// attachAll attaches n raw idle nodes to addr and returns them with the time it took. Each sends
// NodeAttach and waits for its ack, like an SDK node's first exchange.
func attachAll(t *testing.T, phase int, addr string, n int) ([]*rawPeer, time.Duration) {
	t.Helper()
	peers := make([]*rawPeer, n)
	t.Cleanup(func() {
		for _, p := range peers {
			if p != nil {
				p.c.Close()
			}
		}
	})
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < attachers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				id := fmt.Sprintf("idle%07d", i)
				p, err := dialRaw(context.Background(), srcAddr(phase, i), addr, "/fame/v1/attach/ws/downstream/"+id)
				if err == nil {
					p.id = id
					peers[i] = p
					e, _ := envelope.New(&envelope.NodeAttach{SystemID: id, InstanceID: envelope.NewID(), AcceptedLogicals: []string{"*"}})
					e.CorrID, e.TraceID, e.FlowID, e.FlowFlags = envelope.NewID(), envelope.NewID(), "hb-"+id, envelope.FlowSyn
					b, _ := e.Marshal()
					var ack []byte
					if ack, err = p.exchange(b, `"NodeAttachAck"`, 30*time.Second); err == nil && !strings.Contains(string(ack), `"ok":true`) {
						err = fmt.Errorf("%s: attach refused: %s", id, ack)
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatalf("attach: %v", *err)
	}
	return peers, time.Since(start)
}

// heartbeats makes every peer send NodeHeartbeat every hbPeriod and wait for the ack, spread
// evenly over the period (100,000 nodes: about 6,700 a second), until stop is called. sent
// counts acknowledged heartbeats; stop returns the first failure.
func heartbeats(peers []*rawPeer) (sent *atomic.Int64, stop func() error) {
	const workers = 64
	sent = new(atomic.Int64)
	ctx, cancel := context.WithCancel(context.Background())
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	begin := time.Now()
	n := len(peers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				for i := w; i < n; i += workers {
					due := begin.Add(time.Duration(round)*hbPeriod + hbPeriod*time.Duration(i)/time.Duration(n))
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(due)):
					}
					p := peers[i]
					e, _ := envelope.New(&envelope.NodeHeartbeat{SystemID: p.id})
					e.CorrID, e.TraceID, e.FlowID = envelope.NewID(), envelope.NewID(), "hb-"+p.id
					b, _ := e.Marshal()
					if _, err := p.exchange(b, `"NodeHeartbeatAck"`, 10*time.Second); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					sent.Add(1)
				}
			}
		}()
	}
	return sent, func() error {
		cancel()
		wg.Wait()
		if err := firstErr.Load(); err != nil {
			return *err
		}
		return nil
	}
}

// waitHeartbeats waits until every peer has heartbeated at least once (one whole period).
func waitHeartbeats(t *testing.T, sent *atomic.Int64, stop func() error, n int) {
	t.Helper()
	deadline := time.Now().Add(hbPeriod + 60*time.Second)
	for sent.Load() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d heartbeats acknowledged: %v", sent.Load(), n, stop())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// latency makes `calls` sequential calls and returns their p50 and p99.
func latency(t *testing.T, client *node.Node) (p50, p99 time.Duration) {
	t.Helper()
	d := make([]time.Duration, calls)
	for i := range d {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var sum int
		start := time.Now()
		err := client.Call(ctx, mathagent.Address, "add", map[string]int{"x": i, "y": 1}, &sum)
		d[i] = time.Since(start)
		cancel()
		if err != nil || sum != i+1 {
			t.Fatalf("call %d: %v (sum %d)", i, err, sum)
		}
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

// profEnv is the environment of the measured processes: with SCALE_PROFILE_DIR set, every
// allocation is profiled (GODEBUG=memprofilerate=1), which makes the heap profiles exact and
// the figures a little higher.
func profEnv() []string {
	if os.Getenv("SCALE_PROFILE_DIR") != "" {
		return append(os.Environ(), "GODEBUG=memprofilerate=1")
	}
	return os.Environ()
}

// buildFame builds the sentinel binary into dir.
func buildFame(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "fame")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fame")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestIdleNodes attaches SCALE_NODES idle, heart-beating raw nodes (default 10,000) to a
// sentinel process and measures what each costs it against the floor — the same number of bare
// coder/websocket connections with one reader goroutine each, in a process of their own — with
// the attach rate and the p99 of an active SDK client's calls with and without the idle nodes.
// It fails when an idle node costs more than the floor + 4 KiB or more than 1.1 goroutines.
func TestIdleNodes(t *testing.T) {
	n := idleNodes
	raiseNoFile(t, n)
	dir := t.TempDir()
	bin := buildFame(t, dir)

	// The sentinel: open profile, no admission.
	addrFile := filepath.Join(dir, "sentinel.addr")
	cmd := exec.Command(bin, "sentinel", "-addr-file", addrFile)
	cmd.Env = append(profEnv(), "FAME_LISTENER_HOST=127.0.0.1", "FAME_LISTENER_PORT=0", "FAME_LOG_LEVEL=warn",
		"FAME_NODE_ID=scale", "FAME_PPROF=true", "FAME_MAX_CONNECTIONS="+strconv.Itoa(n+1000))
	sen := startProc(t, cmd, addrFile)

	// The active pair: a math replica and a client, both SDK nodes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := "ws://" + sen.addr + "/fame/v1/attach/ws/downstream"
	quiet := slog.New(slog.DiscardHandler)
	replica, err := node.Connect(ctx, node.Config{URL: url, RequestedLogicals: []string{"fame.fabric"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if err := replica.Serve(ctx, mathagent.Address, mathagent.Ops("scale")); err != nil {
		t.Fatal(err)
	}
	client, err := node.Connect(ctx, node.Config{URL: url, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	latency(t, client) // warm up both ends
	p50none, p99none := latency(t, client)
	before := sen.measure(t, "sentinel-0")

	peers, took := attachAll(t, 1, sen.addr, n)
	sent, stopHB := heartbeats(peers)
	p50idle, p99idle := latency(t, client)
	waitHeartbeats(t, sent, stopHB, n)
	after := sen.measure(t, fmt.Sprintf("sentinel-%d", n))
	if err := stopHB(); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	for i, p := range peers {
		p.c.Close()
		peers[i] = nil
	}
	sen.stop()

	// The floor, measured the same way.
	floorAddr := filepath.Join(dir, "floor.addr")
	fcmd := exec.Command(os.Args[0], "-test.run=^$")
	fcmd.Env = append(profEnv(), "SCALE_FLOOR_ADDR_FILE="+floorAddr)
	floor := startProc(t, fcmd, floorAddr)
	time.Sleep(300 * time.Millisecond)
	fBefore := floor.measure(t, "floor-0")
	fpeers, _ := attachAll(t, 2, floor.addr, n)
	_, stopFloorHB := heartbeats(fpeers)
	time.Sleep(2 * time.Second)
	fAfter := floor.measure(t, fmt.Sprintf("floor-%d", n))
	if err := stopFloorHB(); err != nil {
		t.Fatalf("floor heartbeat: %v", err)
	}

	per := func(a, b int64) float64 { return float64(b-a) / float64(n) / 1024 }
	perRSS, floorRSS := per(before.rss, after.rss), per(fBefore.rss, fAfter.rss)
	gPer := float64(after.goroutines-before.goroutines) / float64(n)
	t.Logf("%d idle nodes, heartbeat every %v, attached in %v: %.0f nodes/s (target >= 5000)",
		n, hbPeriod, took.Round(time.Millisecond), float64(n)/took.Seconds())
	t.Logf("sentinel RSS %.1f -> %.1f MiB: %.1f KiB per idle node; heap in use %.1f KiB, stacks %.1f KiB per node; goroutines %d -> %d (%.2f per node)",
		float64(before.rss)/(1<<20), float64(after.rss)/(1<<20), perRSS,
		per(before.heapInuse, after.heapInuse), per(before.stackInuse, after.stackInuse),
		before.goroutines, after.goroutines, gPer)
	t.Logf("floor (bare coder/websocket, one reader goroutine each) RSS %.1f -> %.1f MiB: %.1f KiB per connection; heap %.1f KiB, stacks %.1f KiB per connection; goroutines %.2f per connection",
		float64(fBefore.rss)/(1<<20), float64(fAfter.rss)/(1<<20), floorRSS,
		per(fBefore.heapInuse, fAfter.heapInuse), per(fBefore.stackInuse, fAfter.stackInuse),
		float64(fAfter.goroutines-fBefore.goroutines)/float64(n))
	t.Logf("budget: floor + 4 KiB = %.1f KiB per idle node; measured %.1f KiB (%+.1f KiB over the floor)",
		floorRSS+overFloor/1024, perRSS, perRSS-floorRSS)
	t.Logf("active client, %d sequential calls: p50 %v p99 %v with no idle node, p50 %v p99 %v with %d (p99 ratio %.2f, target <= 1.5)",
		calls, p50none, p99none, p50idle, p99idle, n, float64(p99idle)/float64(p99none))
	if perRSS > floorRSS+overFloor/1024 {
		t.Errorf("an idle node costs the sentinel %.1f KiB, over the floor (%.1f KiB) + 4 KiB", perRSS, floorRSS)
	}
	if gPer > maxGoroutinesPerNode {
		t.Errorf("%.2f goroutines per idle node, over %.2f", gPer, maxGoroutinesPerNode)
	}
}

// TestMillionBindings fills the binding table with 1M sessions and reports memory and lookup
// time.
func TestMillionBindings(t *testing.T) {
	const n = 1_000_000
	cfg := stickiness.DefaultConfig()
	cfg.CacheMax = n
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tab, err := stickiness.NewTable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sids := make([]string, n)
	for i := range sids {
		sids[i] = envelope.SecureDigest(fmt.Sprintf("/scale/client%07d", i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	keysBytes := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.ReadMemStats(&before)
	replicas := []string{"replica-a", "replica-b", "replica-c"}
	for i, sid := range sids {
		tab.Bind(sid, replicas[i%3], 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	tableBytes := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	st := tab.Stats()
	start := time.Now()
	hits := 0
	for i := 0; i < n; i++ {
		if _, ok := tab.Lookup(sids[(i*7919)%n]); ok {
			hits++
		}
	}
	per := time.Since(start) / n
	t.Logf("1M bindings: table %.0f MiB (%.0f B per binding; the sid strings themselves %.0f MiB), %d stored, %d evicted",
		float64(tableBytes)/(1<<20), float64(tableBytes)/n, float64(keysBytes)/(1<<20), st.Size, st.Evictions)
	t.Logf("random lookup over 1M: %v per lookup, %d hits", per, hits)
	if tableBytes > 300<<20 {
		t.Errorf("1M bindings take %d MiB, over 300 MiB", tableBytes>>20)
	}
	runtime.KeepAlive(sids)
}
