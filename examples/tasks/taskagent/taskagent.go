// Package taskagent is the A2A task example: a background agent at tasks@fame.fabric whose
// task counts to n (the task's data payload {"n": N, "stepMs": MS}, or a text payload), reports
// every step as a "working" status with the count so far, and completes with {"counted": n}.
// It stops at once when canceled (tasks/cancel), which is what the cancel example shows;
// the subscribe example follows its status updates with tasks/sendSubscribe.
package taskagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fame-go/fame/agent"
)

// Address is where the example agent serves.
const Address = "tasks@fame.fabric"

// Capability is what it advertises, so callers can find it by capability too.
const Capability = "example.count.v1"

// Bounds on a task's parameters and its run, so one request cannot hold a goroutine for hours:
// n × stepMs may not exceed maxRun, and the agent cancels a task still running after it.
const (
	maxN      = 10_000
	maxStepMs = 10_000
	maxRun    = 10 * time.Minute
)

// Params is a task's data payload.
type Params struct {
	N      int `json:"n"`
	StepMs int `json:"stepMs"`
}

// Progress is the data of each "working" status message.
type Progress struct {
	Count int `json:"count"`
	Of    int `json:"of"`
}

// Run counts, one step every StepMs, until n or cancellation.
func Run(ctx context.Context, tc *agent.TaskContext) (any, error) {
	raw, err := tc.Payload()
	if err != nil {
		return nil, err
	}
	p := Params{N: 5, StepMs: 100}
	var text string
	if json.Unmarshal(raw, &text) != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("%w: %v", agent.ErrInvalidData, err)
		}
	}
	if p.N < 0 || p.N > maxN || p.StepMs < 0 || p.StepMs > maxStepMs {
		return nil, fmt.Errorf("%w: n must be in [0, %d] and stepMs in [0, %d]", agent.ErrInvalidData, maxN, maxStepMs)
	}
	if time.Duration(p.N)*time.Duration(p.StepMs)*time.Millisecond > maxRun {
		return nil, fmt.Errorf("%w: n × stepMs may not exceed %v", agent.ErrInvalidData, maxRun)
	}
	t := time.NewTicker(time.Duration(max(p.StepMs, 1)) * time.Millisecond)
	defer t.Stop()
	for i := 1; i <= p.N; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		m, _ := agent.NewMessage("agent", Progress{Count: i, Of: p.N})
		if !tc.Update(agent.StateWorking, &m) {
			return nil, errors.New("task ended")
		}
	}
	return map[string]int{"counted": p.N}, nil
}

// New builds the example agent.
func New() (*agent.TaskAgent, error) {
	return agent.New(agent.Options{
		Background:  true,
		Run:         Run,
		MaxLifetime: maxRun + time.Minute, // the bound above, whatever a step costs
		Card: agent.AgentCard{
			Name: "tasks", Description: "counts to n, one status update per step; cancellable",
			URL: "fame://" + Address, Version: "1.0.0",
			Skills: []agent.AgentSkill{{ID: "count", Name: "count", Description: `payload {"n": N, "stepMs": MS}`}},
		},
	})
}
