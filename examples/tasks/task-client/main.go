// Command task-client drives the A2A task example agent (task-agent) through the sentinel at
// FAME_DIRECT_ADMISSION_URL:
//
//	task-client subscribe   starts a count to 5 and prints every status update until it completes
//	task-client cancel      starts a long count, cancels it after the second update and shows
//	                        the task ends "canceled" (tasks/get confirms it)
//
// -by-capability finds the agent by its capability instead of its address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/fame-go/fame/agent"
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/tasks/taskagent"
	"github.com/fame-go/fame/node"
)

func main() {
	byCap := flag.Bool("by-capability", false, "call by capability "+taskagent.Capability+" instead of address "+taskagent.Address)
	flag.Parse()
	if flag.NArg() != 1 || (flag.Arg(0) != "subscribe" && flag.Arg(0) != "cancel") {
		fmt.Fprintln(os.Stderr, "usage: task-client [-by-capability] subscribe|cancel")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *byCap); err != nil {
		fmt.Fprintln(os.Stderr, "task-client:", err)
		os.Exit(1)
	}
}

func run(mode string, byCap bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := config.Node()
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := node.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	p := agent.ByAddress(n, taskagent.Address)
	if byCap {
		p = agent.ByCapabilities(n, taskagent.Capability)
	}
	id := envelope.NewID()
	params := taskagent.Params{N: 5, StepMs: 100}
	if mode == "cancel" {
		params = taskagent.Params{N: 1000, StepMs: 100}
	}
	msg, err := agent.NewMessage("user", params)
	if err != nil {
		return err
	}
	// Start, then subscribe, as the reference's proxy does (its agents do not start a task on
	// tasks/sendSubscribe; ours would, but this client works against both).
	if _, err := p.StartTask(ctx, agent.TaskSendParams{ID: id, SessionID: id, Message: msg}); err != nil {
		return err
	}
	empty, _ := agent.NewMessage("user", nil)
	u, err := p.Subscribe(ctx, agent.TaskSendParams{ID: id, SessionID: id, Message: empty})
	if err != nil {
		return err
	}
	defer u.Close()
	updates := 0
	for {
		ev, err := u.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if ev.Status == nil {
			continue
		}
		payload, _ := ev.Status.Status.Message.Payload()
		fmt.Printf("status %s %s final=%v\n", ev.Status.Status.State, orNone(payload), ev.Status.Final)
		updates++
		if mode == "cancel" && updates == 3 {
			t, err := p.CancelTask(ctx, agent.TaskIDParams{ID: id})
			if err != nil {
				return err
			}
			fmt.Printf("cancel -> %s\n", t.Status.State)
		}
	}
	t, err := p.GetTaskStatus(ctx, agent.TaskQueryParams{ID: id})
	if err != nil {
		return err
	}
	fmt.Printf("tasks/get -> %s\n", t.Status.State)
	want := agent.StateCompleted
	if mode == "cancel" {
		want = agent.StateCanceled
	}
	if t.Status.State != want {
		return fmt.Errorf("task ended %s, want %s", t.Status.State, want)
	}
	return nil
}

func orNone(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
