//go:build scale

package scale

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/stickiness"
)

var idleNodes = envInt("SCALE_NODES", 10000)

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return d
}

// rss returns a process's resident set size in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
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

// metric reads one unlabelled series from the sentinel's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestIdleNodeMemory attaches SCALE_NODES idle nodes (default 10,000) to a sentinel process and
// reports what each costs it.
func TestIdleNodeMemory(t *testing.T) {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur < uint64(idleNodes)+1000 {
		lim.Cur = min(lim.Max, uint64(idleNodes)*2+1000)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fame")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fame")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command("sh", "-c", fmt.Sprintf("ulimit -n %d; exec %s sentinel -addr-file %s", idleNodes*2+1000, bin, addrFile))
	cmd.Env = append(os.Environ(), "FAME_LISTENER_HOST=127.0.0.1", "FAME_LISTENER_PORT=0", "FAME_LOG_LEVEL=warn", "FAME_NODE_ID=scale")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var addr string
	for i := 0; i < 100 && addr == ""; i++ {
		b, _ := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		time.Sleep(50 * time.Millisecond)
	}
	if addr == "" {
		t.Fatal("sentinel did not start")
	}
	base := "http://" + addr
	pid := cmd.Process.Pid
	time.Sleep(300 * time.Millisecond)
	rss0, heap0, gor0 := rss(t, pid), metric(t, base, "go_memstats_heap_inuse_bytes"), metric(t, base, "go_goroutines")

	ctx := context.Background()
	conns := make([]*websocket.Conn, idleNodes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, idleNodes)
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("idle%06d", i)
			ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/fame/v1/attach/ws/downstream/"+id, nil)
			if err != nil {
				errs <- err
				return
			}
			e, _ := envelope.New(&envelope.NodeAttach{SystemID: id, InstanceID: envelope.NewID(), AcceptedLogicals: []string{"*"}})
			e.CorrID, e.TraceID, e.FlowID, e.FlowFlags = envelope.NewID(), envelope.NewID(), envelope.NewID(), envelope.FlowSyn
			b, _ := e.Marshal()
			if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
				errs <- err
				return
			}
			if _, _, err := ws.Read(ctx); err != nil { // the NodeAttachAck
				errs <- err
				return
			}
			conns[i] = ws
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("attach: %v", err)
	}
	attachTook := time.Since(start)
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow()
		}
	}()
	time.Sleep(time.Second)
	runtime.GC()
	rss1, heap1, gor1 := rss(t, pid), metric(t, base, "go_memstats_heap_inuse_bytes"), metric(t, base, "go_goroutines")
	stack1 := metric(t, base, "go_memstats_stack_inuse_bytes")
	perRSS := float64(rss1-rss0) / float64(idleNodes)
	perHeap := (heap1 - heap0) / float64(idleNodes)
	t.Logf("%d idle nodes attached in %v", idleNodes, attachTook.Round(time.Millisecond))
	t.Logf("sentinel RSS %.1f MiB -> %.1f MiB: %.1f KiB per idle node", float64(rss0)/(1<<20), float64(rss1)/(1<<20), perRSS/1024)
	t.Logf("heap in use (allocated, not all resident): %.1f KiB per idle node; stacks %.1f MiB in all; goroutines %.0f -> %.0f (%.2f per node)",
		perHeap/1024, stack1/(1<<20), gor0, gor1, (gor1-gor0)/float64(idleNodes))
	if perRSS > 40*1024 {
		t.Errorf("%.1f KiB per idle node is over the 40 KiB budget", perRSS/1024)
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
	if tableBytes > 1<<30 {
		t.Errorf("1M bindings take %d MiB, over 1 GiB", tableBytes>>20)
	}
	runtime.KeepAlive(sids)
}
