package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fame-go/fame/chaos"
)

func init() { register("chaos", runChaos) }

// errChaosFailed: the run completed and a pass criterion failed (the summary lists which).
var errChaosFailed = errors.New("the run failed its criteria")

// runChaos is `fame chaos`: the chaos and soak harness (package chaos). It prints the human
// summary, writes the result as one JSON object to -out, and fails when a criterion does.
func runChaos(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	dur := fs.Duration("duration", 2*time.Minute, "load phase, warm-up included (at least 30s)")
	seed := fs.Uint64("seed", 1, "seed of the fault schedule")
	profile := fs.String("profile", "strict", "strict (strict-overlay, channel, welcome + CA) or overlay (signed, channel, open admission)")
	out := fs.String("out", "chaos-result.json", "write the result as one JSON object here (\"-\": stdout)")
	dir := fs.String("dir", "", "work directory for logs, execution logs, the store and the CA (default: a new temporary one, kept)")
	agent := fs.String("agent", "", "math-agent binary (default: math-agent beside this binary, else on PATH)")
	verbose := fs.Bool("v", false, "log every fault as it happens")
	replay := fs.Int("replay-cache", 1024, "every node's FAME_REPLAY_CACHE_SIZE (0: the SDK default, 65536, which fills for ~20 min at this load: RSS grows until then)")
	instWarm := fs.Duration("instance-warmup", chaos.DefaultInstanceWarmup, "judge each process instance's RSS and goroutines from this long after its own start (measured, RELIABILITY.md)")
	tsClient := fs.Bool("ts-client", false, "overlay profile: add one real TypeScript client (interop/'s pinned @naylence packages, Node 20) calling add with its own idempotency keys")
	interopDir := fs.String("interop", "interop", "directory of interop/ whose node_modules the TS client uses (npm ci there first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own binary: %w", err)
	}
	if *agent == "" {
		*agent = filepath.Join(filepath.Dir(self), "math-agent")
		if _, err := os.Stat(*agent); err != nil {
			if *agent, err = exec.LookPath("math-agent"); err != nil {
				return errors.New("no math-agent beside this binary nor on PATH: build it (make build) or pass -agent")
			}
		}
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "fame-chaos-"); err != nil {
			return err
		}
	}
	lv := slog.LevelWarn
	if *verbose {
		lv = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	fmt.Fprintf(os.Stderr, "chaos: %s run, seed %d, profile %s; logs in %s\n", *dur, *seed, *profile, *dir)
	res, err := chaos.Run(ctx, chaos.Config{FameBin: self, AgentBin: *agent, Duration: *dur, Seed: *seed,
		Profile: strings.ToLower(*profile), Dir: *dir, ReplayCache: *replay, InstanceWarmup: *instWarm, TSClient: *tsClient, InteropDir: *interopDir, Logger: log})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if *out == "-" {
		fmt.Println(string(b))
	} else if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	res.Summary(os.Stdout)
	if !res.Pass {
		return errChaosFailed
	}
	return nil
}
