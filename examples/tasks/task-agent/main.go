// Command task-agent serves the A2A task example (package taskagent) at tasks@fame.fabric,
// advertising capability example.count.v1, through the sentinel at
// FAME_DIRECT_ADMISSION_URL (or wherever FAME_ADMISSION_PROFILE places it; see package node).
// It prints READY on stdout once bound and stops cleanly on SIGINT/SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fame-go/fame/agent"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/examples/tasks/taskagent"
	"github.com/fame-go/fame/node"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "task-agent:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Node()
	if err != nil {
		return err
	}
	cfg.RequestedLogicals = []string{"fame.fabric"}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := node.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	a, err := taskagent.New()
	if err != nil {
		return err
	}
	defer a.Close() // cancels running tasks before the node goes
	if err := agent.Serve(ctx, n, taskagent.Address, a, nil, taskagent.Capability); err != nil {
		return err
	}
	fmt.Println("READY")
	<-ctx.Done()
	return nil
}
