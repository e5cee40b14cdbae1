package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fame-go/fame/loadgen"
	"github.com/fame-go/fame/loadgen/ceiling"
)

func init() { register("bench-ceiling", runBenchCeiling) }

// ceilingReport is `fame bench-ceiling -json`: per form ("process": caller, relay and echo
// as three processes; "local": the same as goroutines of one process; "process-batched": three
// processes whose connections each have a corked batching writer), per load ("seq": one caller;
// "pipelined": -c callers on one connection).
type ceilingReport map[string]map[string]loadgen.Summary

// runBenchCeiling is `fame bench-ceiling`: the bare coder/websocket relay in the topology of a
// real call (see package loadgen/ceiling). With -role relay|echo it is one of the child
// processes the default role starts.
func runBenchCeiling(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench-ceiling", flag.ContinueOnError)
	role := fs.String("role", "run", "run (measure), or relay / echo (the child processes run starts)")
	addrFile := fs.String("addr-file", "", "relay: write the listening address here")
	url := fs.String("url", "", "echo: relay base URL (ws://host:port)")
	callers := fs.Int("c", 50, "pipelined callers on the one connection")
	dur := fs.Duration("d", 10*time.Second, "measured duration of each load")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before each measurement (not recorded)")
	timeout := fs.Duration("timeout", 5*time.Second, "per-call timeout")
	forms := fs.String("forms", "process,local,process-batched", "which forms to measure: process (three processes), local (one process), process-batched (three processes, corked batched writers)")
	batched := fs.Bool("batched", false, "relay / echo: corked batched writer per connection")
	asJSON := fs.Bool("json", false, "print the results as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch *role {
	case "relay":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		if *addrFile != "" {
			if err := os.WriteFile(*addrFile, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
				return fmt.Errorf("addr-file: %w", err)
			}
		}
		return ceiling.NewRelay(ceiling.Config{Log: log, Batched: *batched}).Serve(ctx, l)
	case "echo":
		if *url == "" {
			return errors.New("echo: -url is required")
		}
		return ceiling.RunEcho(ctx, *url, ceiling.Config{Log: log, Batched: *batched})
	case "run":
	default:
		return fmt.Errorf("unknown -role %q", *role)
	}

	opts := loadgen.Options{Warmup: *warmup, Duration: *dur, CallTimeout: *timeout}
	report := ceilingReport{}
	for _, form := range strings.Split(*forms, ",") {
		var res map[string]loadgen.Summary
		var err error
		switch strings.TrimSpace(form) {
		case "process":
			res, err = ceilingProcesses(ctx, opts, *callers, ceiling.Config{Log: log}, *asJSON)
		case "process-batched":
			res, err = ceilingProcesses(ctx, opts, *callers, ceiling.Config{Log: log, Batched: true}, *asJSON)
		case "local":
			res, err = ceilingLocal(ctx, opts, *callers, ceiling.Config{Log: log}, *asJSON)
		default:
			err = fmt.Errorf("unknown form %q (process, local, process-batched)", form)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", form, err)
		}
		report[strings.TrimSpace(form)] = res
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(report)
	}
	return nil
}

// ceilingLoads runs the sequential and the pipelined load against relayURL.
func ceilingLoads(ctx context.Context, relayURL, form string, cfg ceiling.Config, opts loadgen.Options, callers int, cpu map[string]int, quiet bool) (map[string]loadgen.Summary, error) {
	out := map[string]loadgen.Summary{}
	for _, load := range []struct {
		name    string
		callers int
	}{{"seq", 1}, {"pipelined", callers}} {
		o := opts
		o.Callers = load.callers
		o.CPU = cpu
		res, err := ceiling.Measure(ctx, relayURL, form+"-"+load.name, cfg, o)
		if err != nil {
			return nil, err
		}
		if !quiet {
			title := fmt.Sprintf("ceiling (%s): %s, %d caller(s) on one connection", form, load.name, load.callers)
			if err := res.WriteText(os.Stdout, title); err != nil {
				return nil, err
			}
		}
		if res.Calls() == 0 {
			return nil, fmt.Errorf("%s: no call succeeded (errors %v)", load.name, res.Errors)
		}
		out[load.name] = res.Summary()
	}
	return out, nil
}

func ceilingLocal(ctx context.Context, opts loadgen.Options, callers int, cfg ceiling.Config, quiet bool) (map[string]loadgen.Summary, error) {
	lo, err := ceiling.StartLocal(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res, err := ceilingLoads(ctx, lo.URL, "local", cfg, opts, callers, map[string]int{"process": 0}, quiet)
	return res, errors.Join(err, lo.Close())
}

// ceilingProcesses starts the relay and the echo agent as children of this binary, measures
// with this process as the caller, and stops both.
func ceilingProcesses(ctx context.Context, opts loadgen.Options, callers int, cfg ceiling.Config, quiet bool) (res map[string]loadgen.Summary, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "fame-ceiling-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	addrFile := filepath.Join(dir, "addr")
	form := "process"
	if cfg.Batched {
		form = "process-batched"
	}
	batched := fmt.Sprintf("-batched=%t", cfg.Batched)
	relay := exec.Command(self, "bench-ceiling", "-role", "relay", batched, "-addr-file", addrFile)
	relay.Stderr = os.Stderr
	if err := relay.Start(); err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	defer stopChild(relay, &err)
	addr, err := waitAddrFile(ctx, addrFile, relay, 10*time.Second)
	if err != nil {
		return nil, err
	}
	relayURL := "ws://" + addr
	echo := exec.Command(self, "bench-ceiling", "-role", "echo", batched, "-url", relayURL)
	echo.Stderr = os.Stderr
	if err := echo.Start(); err != nil {
		return nil, fmt.Errorf("start echo: %w", err)
	}
	defer stopChild(echo, &err)
	if err := ceiling.WaitReady(ctx, relayURL, 10*time.Second); err != nil {
		return nil, err
	}
	return ceilingLoads(ctx, relayURL, form, cfg, opts, callers,
		map[string]int{"client": 0, "relay": relay.Process.Pid, "echo": echo.Process.Pid}, quiet)
}

// stopChild interrupts a child and waits for it; a child that had already failed adds its
// exit status to *errp.
func stopChild(c *exec.Cmd, errp *error) {
	_ = c.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil && *errp == nil && !strings.Contains(err.Error(), "interrupt") {
			*errp = fmt.Errorf("%s: %w", filepath.Base(c.Path)+" "+strings.Join(c.Args[1:], " "), err)
		}
	case <-time.After(5 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

func waitAddrFile(ctx context.Context, path string, c *exec.Cmd, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b)), nil
		}
		if c.ProcessState != nil {
			return "", fmt.Errorf("relay exited: %v", c.ProcessState)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("relay wrote no address to %s within %s", path, timeout)
}
