package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/loadgen"
)

func init() { register("bench", runBench) }

// runBench is `fame bench`: load against one operation through a sentinel, figures on stdout.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	url := fs.String("url", os.Getenv("FAME_DIRECT_ADMISSION_URL"), "attach URL of the sentinel (FAME_DIRECT_ADMISSION_URL)")
	to := fs.String("to", "math@fame.fabric", "address of the agent to call")
	method := fs.String("method", "add", "operation to call; add's answer is checked")
	callers := fs.Int("c", 50, "concurrent callers (open loop: most calls in flight)")
	dur := fs.Duration("d", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before measuring (not recorded)")
	rate := fs.Float64("rate", 0, "open loop: total calls per second, latency from the scheduled time (0 = closed loop)")
	payload := fs.Int("payload", 0, "add a string parameter of this many bytes to every request")
	conns := fs.Int("conns", 1, "client nodes (WebSocket connections) the callers share")
	timeout := fs.Duration("timeout", 5*time.Second, "per-call timeout")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile (the client side) to FILE")
	cpuPids := fs.String("cpu", "", "also report the CPU time per call of these processes: name=pid,... (the client is always reported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *url == "" {
		return errors.New("no sentinel: pass -url or set FAME_DIRECT_ADMISSION_URL")
	}
	// The client nodes honour the usual FAME_* variables; -url wins over the environment.
	ncfg, err := config.NodeFrom(func(k string) (string, bool) {
		if k == "FAME_DIRECT_ADMISSION_URL" {
			return *url, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		return err
	}
	ncfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ncfg.CallTimeout = *timeout

	cpu, err := parseCPUPids(*cpuPids)
	if err != nil {
		return err
	}
	opts := loadgen.Options{Callers: *callers, Rate: *rate, Warmup: *warmup, Duration: *dur, CallTimeout: *timeout, CPU: cpu}
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	target, err := loadgen.DialTarget(dialCtx, loadgen.TargetConfig{Node: ncfg, To: *to, Method: *method, Conns: *conns, PayloadBytes: *payload})
	cancel()
	if err != nil {
		return err
	}
	defer target.Close()

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	res, err := loadgen.Run(ctx, opts, target.Call)
	if err != nil {
		return err
	}
	if err := printBench(os.Stdout, res, *asJSON, fmt.Sprintf("fame bench: %s %s via %s, %d connection(s), %d-byte pad", *to, *method, *url, *conns, *payload)); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted; figures cover part of the window")
	}
	if res.Calls() == 0 {
		return errors.New("no call succeeded")
	}
	return nil
}

// parseCPUPids reads -cpu: "sentinel=123,agent=456" plus this process as "client".
func parseCPUPids(s string) (map[string]int, error) {
	m := map[string]int{"client": 0}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, pid, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(pid)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("-cpu: %q is not name=pid", part)
		}
		m[name] = n
	}
	return m, nil
}

func printBench(w io.Writer, res *loadgen.Result, asJSON bool, title string) error {
	if !asJSON {
		return res.WriteText(w, title)
	}
	enc := json.NewEncoder(w)
	return enc.Encode(res.Summary())
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
