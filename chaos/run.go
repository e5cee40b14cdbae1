package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// Config is one run.
type Config struct {
	FameBin  string        // the fame binary (sentinel, oauth2, welcome, ca)
	AgentBin string        // the math-agent binary
	Duration time.Duration // the whole load phase, warm-up included
	Seed     uint64
	Profile  string // strict (default) or overlay
	Dir      string // work directory: logs, execution logs, the bbolt store, the CA
	Replicas int    // default 3
	// Unary callers at-least-once and at-most-once, streaming callers (defaults 4, 4, 2).
	ALOCallers, AMOCallers, Streamers int
	// ReplayCache is every node's FAME_REPLAY_CACHE_SIZE (0: the SDK's 65536). The replay
	// guard is a bounded cache that fills with the traffic: at this load a 65536-id guard
	// keeps growing for about 20 minutes, which a growth bound measured after a short warm-up
	// would report as a leak. fame chaos sets 1024 (full within the warm-up) unless told.
	ReplayCache int
	// TSClient adds one real TypeScript client (overlay profile only; tsclient.go) calling add
	// with its own idempotency keys; InteropDir is where interop/node_modules was installed
	// (default "interop"), NodeBin the node binary (default "node" on PATH).
	TSClient   bool
	InteropDir string
	NodeBin    string
	// InstanceWarmup: each process instance's RSS and goroutines are judged from this long
	// after its own start (0: DefaultInstanceWarmup).
	InstanceWarmup time.Duration
	Logger         *slog.Logger // the harness's own progress (nil: discard)
	NodeLog        io.Writer    // the callers' SDK logs (nil: Dir/logs/callers.log)
}

func (c *Config) defaults() error {
	if c.Profile == "" {
		c.Profile = "strict"
	}
	if c.Replicas == 0 {
		c.Replicas = 3
	}
	if c.ALOCallers == 0 && c.AMOCallers == 0 {
		c.ALOCallers, c.AMOCallers = 4, 4
	}
	if c.Streamers == 0 {
		c.Streamers = 2
	}
	if c.TSClient && c.Profile != "overlay" {
		return errors.New("chaos: the TS client runs in the overlay profile only (-profile overlay)")
	}
	if c.InteropDir == "" {
		c.InteropDir = "interop"
	}
	if c.InstanceWarmup <= 0 {
		c.InstanceWarmup = DefaultInstanceWarmup
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Duration < 30*time.Second {
		return fmt.Errorf("chaos: duration %s is too short (at least 30s: warm-up, faults, cool-down)", c.Duration)
	}
	if c.FameBin == "" || c.AgentBin == "" || c.Dir == "" {
		return errors.New("chaos: FameBin, AgentBin and Dir are required")
	}
	return nil
}

// Run starts the stack and the load, injects the seeded faults, stops everything and
// returns the accounting. An error means the harness itself could not run (a process that
// would not start); a run whose criteria fail returns a Result with Pass false.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	nodeLog := cfg.NodeLog
	if nodeLog == nil {
		f, err := os.Create(filepath.Join(cfg.Dir, "logs", "callers.log"))
		if err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		defer f.Close()
		nodeLog = f
	}
	slogNodes := slog.New(slog.NewTextHandler(nodeLog, &slog.HandlerOptions{Level: slog.LevelInfo}))

	t0 := time.Now()
	log.Info("starting the stack", "profile", cfg.Profile, "dir", cfg.Dir)
	st, err := startStack(ctx, cfg, cfg.Dir)
	if st != nil {
		defer st.stopAll()
	}
	if err != nil {
		return nil, err
	}

	// The callers.
	rec := &recorder{}
	var callers []*caller
	defer func() {
		for _, c := range callers {
			_ = c.n.Close()
		}
	}()
	add := func(name, delivery string, stream, slow bool, env map[string]string) error {
		n, err := connectCallerTo(ctx, env, delivery, slogNodes.With("caller", name), "")
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c := &caller{name: name, stream: stream, slow: slow, n: n, rec: rec, attemptTimeout: 15 * time.Second,
			pause: 50 * time.Millisecond, streamN: 30}
		if slow {
			c.streamN, c.pause = 92, 0
		}
		callers = append(callers, c)
		return nil
	}
	for i := range cfg.ALOCallers {
		if err := add(fmt.Sprintf("alo%d", i+1), node.AtLeastOnce, false, false, st.nodeEnv); err != nil {
			return nil, err
		}
	}
	for i := range cfg.AMOCallers {
		if err := add(fmt.Sprintf("amo%d", i+1), node.AtMostOnce, false, false, st.nodeEnv); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Streamers {
		d := node.AtLeastOnce
		if i%2 == 1 {
			d = node.AtMostOnce
		}
		if err := add(fmt.Sprintf("stream%d", i+1), d, true, false, st.nodeEnv); err != nil {
			return nil, err
		}
	}
	proxy, err := newSlowProxy(fmt.Sprintf("127.0.0.1:%d", st.port))
	if err != nil {
		return nil, err
	}
	defer proxy.close()
	{
		n, err := connectCallerTo(ctx, st.nodeEnv, node.AtMostOnce, slogNodes.With("caller", "slow"),
			fmt.Sprintf("ws://%s/fame/v1/attach/ws/downstream", proxy.addr()))
		if err != nil {
			return nil, fmt.Errorf("slow client: %w", err)
		}
		callers = append(callers, &caller{name: "slow", stream: true, slow: true, n: n, rec: rec,
			attemptTimeout: 15 * time.Second, streamN: 92})
	}

	var ts *tsClient
	if cfg.TSClient {
		if ts, err = startTSClient(cfg, fmt.Sprintf("ws://127.0.0.1:%d/fame/v1/attach/ws/downstream", st.port), rec); err != nil {
			return nil, err
		}
		defer func() {
			if ts != nil {
				ts.kill()
			}
		}()
	}

	// load starts every caller; the returned stop ends them (the call in progress gets its
	// retries for up to 20 s more) and waits.
	seqs := make([]int, len(callers))
	load := func() (stop func()) {
		stopC := make(chan struct{})
		var drainMu sync.Mutex
		drainBy := time.Now().Add(time.Hour)
		var wg sync.WaitGroup
		for i, c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seqs[i] = c.run(stopC, &drainBy, &drainMu, seqs[i])
			}()
		}
		return func() {
			drainMu.Lock()
			drainBy = time.Now().Add(20 * time.Second)
			drainMu.Unlock()
			close(stopC)
			wg.Wait()
		}
	}

	// The sampler: every 2 s until the end mark.
	sampCtx, stopSamp := context.WithCancel(ctx)
	var sampWG sync.WaitGroup
	sampWG.Add(1)
	go func() {
		defer sampWG.Done()
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-sampCtx.Done():
				return
			case <-tk.C:
				st.sampleAll(sampCtx)
			}
		}
	}()
	defer func() { stopSamp(); sampWG.Wait() }()

	warmup := min(20*time.Second, cfg.Duration/6)
	cooldown := min(15*time.Second, cfg.Duration/8)
	loadStart := time.Now()
	stopLoad := load()
	log.Info("warm-up", "for", warmup)
	if err := sleepCtx(ctx, warmup); err != nil {
		stopLoad()
		return nil, err
	}
	// The warm-up mark: load paused, every process sampled, load resumed.
	stopLoad()
	time.Sleep(time.Second)
	harnessWarm := selfSample()
	st.sampleAll(ctx)
	stopLoad = load()

	window := cfg.Duration - warmup - cooldown
	faults := plan(cfg.Seed, window, cfg.Replicas)
	phase := time.Now()
	var done []Fault
	prevEnd := time.Duration(0)
	for i := range faults {
		f := faults[i]
		gap := f.At - prevEnd
		prevEnd = f.At + f.Hold
		if err := sleepCtx(ctx, gap); err != nil {
			break
		}
		if time.Since(phase)+f.Hold > window {
			break // the restarts took longer than planned: the rest would run into the cool-down
		}
		log.Info("fault", "kind", f.Kind, "target", f.Target, "hold", f.Hold)
		if err := st.inject(ctx, &f, proxy); err != nil {
			f.Err = err.Error()
			log.Error("fault failed", "kind", f.Kind, "target", f.Target, "err", err)
			done = append(done, f)
			break // the stack is not whole: stop injecting, keep measuring
		}
		log.Info("recovered", "kind", f.Kind, "target", f.Target, "after", f.Recovered.Sub(f.Start).Round(time.Millisecond))
		done = append(done, f)
	}
	if rest := cfg.Duration - time.Since(loadStart); rest > 0 {
		_ = sleepCtx(ctx, rest)
	}
	log.Info("stopping the load")
	if ts != nil {
		_ = ts.stdin.Close() // it finishes its call in progress beside the Go callers
	}
	stopLoad()
	var tsErr error
	if ts != nil {
		tsErr = ts.stop()
		ts = nil
	}
	time.Sleep(2 * time.Second)
	stopSamp()
	sampWG.Wait()
	harnessEnd := selfSample()
	st.sampleAll(context.Background())
	runEnd := time.Now()

	execs, err := readExecLogs(st.execLogs)
	if err != nil {
		return nil, err
	}
	var tsLinkClosed []time.Time
	if cfg.TSClient {
		tsLinkClosed = readTSLinkClosed(filepath.Join(cfg.Dir, "logs", "ts-client.log"))
	}
	r := analyze(cfg, rec.snapshot(), execs, done, t0, warmup, tsLinkClosed)
	r.FaultsPlanned = len(faults)
	r.InstanceWarmupS = cfg.InstanceWarmup.Seconds()
	if tsErr != nil {
		r.TSClientErr = tsErr.Error()
	}
	loads := execTimes(execs)
	for _, p := range st.replicas {
		for _, in := range p.all() {
			r.Processes = append(r.Processes, procInfo(in, runEnd, cfg.InstanceWarmup, firstLoad(loads, p.name, in.started)))
		}
	}
	for _, p := range append([]*proc{st.sentinel}, st.services...) {
		for _, in := range p.all() {
			r.Processes = append(r.Processes, procInfo(in, runEnd, cfg.InstanceWarmup, time.Time{}))
		}
	}
	r.Harness = ProcInfo{Role: "harness", PID: os.Getpid(), LifetimeS: round1(runEnd.Sub(t0).Seconds()), End: "running at the end",
		Judged: true, WarmRSSMiB: mib(harnessWarm.RSSBytes), EndRSSMiB: mib(harnessEnd.RSSBytes),
		WarmGoroutines: harnessWarm.Goroutines, EndGoroutines: harnessEnd.Goroutines, MaxRSSMiB: mib(max(harnessWarm.RSSBytes, harnessEnd.RSSBytes))}
	r.Harness.RSSGrowthPct = round1(100 * (float64(harnessEnd.RSSBytes) - float64(harnessWarm.RSSBytes)) / float64(harnessWarm.RSSBytes))
	// The harness keeps every attempt in memory for the accounting, so its RSS grows with the
	// run by design; its goroutines (the callers' SDK nodes) are held to the bound.
	r.Harness.OK = judge(ProcInfo{WarmGoroutines: r.Harness.WarmGoroutines, EndGoroutines: r.Harness.EndGoroutines})
	r.Harness.End = "running at the end (RSS not judged: it holds every attempt)"
	r.verdict()
	return r, nil
}

// analyze is the accounting of a finished run.
// tsLinkClosed are the times the TS client's runtime logged that its connection closed
// (readTSLinkClosed); analyze reads them to tell an attempt sent over a dead connection.
func analyze(cfg Config, atts []attempt, execs []mathagent.Execution, faults []Fault, t0 time.Time, warmup time.Duration,
	tsLinkClosed []time.Time) *Result {
	r := &Result{Seed: cfg.Seed, Profile: cfg.Profile, DurationS: cfg.Duration.Seconds(), WarmupS: warmup.Seconds(),
		Faults: faults, FaultCounts: map[string]int{}, Executions: len(execs)}
	for _, f := range faults {
		r.FaultCounts[f.Kind]++
	}
	var unary, streams, slow, ts []attempt
	slowKeys := map[string]bool{}
	for _, a := range atts {
		switch {
		case a.TS:
			ts = append(ts, a)
		case a.Slow:
			slow = append(slow, a)
			slowKeys[a.Key] = true
		case a.Stream:
			streams = append(streams, a)
		default:
			unary = append(unary, a)
		}
	}
	countAttempts(&r.Calls, unary, faults, t0, &r.LostDetail)
	countAttempts(&r.Streams.CallCounts, streams, faults, t0, &r.LostDetail)
	countAttempts(&r.SlowRead, slow, faults, t0, &r.LostDetail)
	if cfg.TSClient {
		r.TSClient = &CallCounts{}
		countAttempts(r.TSClient, ts, faults, t0, &r.LostDetail)
		for _, a := range ts {
			if a.Outcome == OutTimeout && onDeadLink(a, faults, tsLinkClosed) {
				r.TSClient.LostClientLink++
			}
		}
	}
	for _, a := range streams {
		switch {
		case a.Outcome == OutAnswered:
		case a.Outcome == OutNacked, a.Outcome == OutRemote:
			r.Streams.CutWithNack++
		case a.Outcome == OutError && a.Notice && !lostAttempt(a, faults):
			r.Streams.CutWithNotice++
		default:
			r.Streams.CutWithoutNack++
		}
	}
	if len(r.LostDetail) > 50 {
		r.LostDetail = r.LostDetail[:50]
	}
	r.Duplicates = classifyDuplicates(execs, faults, slowKeys, t0)
	r.Sessions = analyzeSessions(unary, execs, faults, t0)
	return r
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// selfSample is the harness's own RSS and goroutines (its callers' SDK goroutines included),
// less net/http's keep-alive connection goroutines: the callers' admission clients keep
// idle connections to the welcome, OAuth2 and CA services that the transport closes on its
// own idle timeout, so their count says nothing about leaks.
func selfSample() sample {
	rss, _ := readRSS(os.Getpid())
	return sample{At: time.Now(), RSSBytes: rss, Goroutines: ownGoroutines()}
}

func ownGoroutines() int {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		return runtime.NumGoroutine()
	}
	return countGoroutines(b.String(), "net/http.(*persistConn)")
}

// countGoroutines sums a debug=1 goroutine profile's groups ("N @ 0x..." then the stack),
// skipping those whose stack has a frame containing one of skip.
func countGoroutines(profile string, skipFrames ...string) int {
	n, cur, skipGroup := 0, 0, false
	flush := func() {
		if !skipGroup {
			n += cur
		}
		cur, skipGroup = 0, false
	}
	for _, line := range strings.Split(profile, "\n") {
		var c int
		if _, err := fmt.Sscanf(line, "%d @", &c); err == nil {
			flush()
			cur = c
			continue
		}
		for _, k := range skipFrames {
			if strings.Contains(line, k) {
				skipGroup = true
			}
		}
	}
	flush()
	return n
}
