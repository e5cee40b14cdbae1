package agent

import (
	"context"
	"errors"
	"fmt"
	"github.com/fame-go/fame/envelope"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// TestProxyPinsTaskToItsAgent: two agents advertise count.v1; a by-capability proxy starts
// tasks, all on the agent the sentinel picked for its session (stickiness), which then
// drains (a rolling restart), so that the sentinel sends new by-capability calls to the other. The proxy's tasks/get,
// tasks/sendSubscribe, tasks/resubscribe and tasks/cancel of those tasks still reach the agent
// that took them; a proxy without the pin asks the second agent, which answers -32001.
func TestProxyPinsTaskToItsAgent(t *testing.T) {
	url := fabric(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nA, nB, cli := connect(t, url, "fame.fabric"), connect(t, url, "fame.fabric"), connect(t, url)
	ran := make(chan string, 16)
	run := func(name string) RunFunc {
		return func(ctx context.Context, tc *TaskContext) (any, error) {
			ran <- name + ":" + tc.ID
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	a := newAgent(t, Options{Background: true, Run: run("a")})
	b := newAgent(t, Options{Background: true, Run: run("b")})
	if err := Serve(ctx, nA, "count-a@fame.fabric", a, nil, "count.v1"); err != nil {
		t.Fatal(err)
	}
	if err := Serve(ctx, nB, "count-b@fame.fabric", b, nil, "count.v1"); err != nil {
		t.Fatal(err)
	}
	p := ByCapabilities(cli, "count.v1")
	msg, _ := NewMessage("user", "go")
	// The sentinel picks one provider for this client's session and keeps it (stickiness).
	ids := []string{"t1", "t2", "t3"}
	var took string
	for _, id := range ids {
		if _, err := p.StartTask(ctx, TaskSendParams{ID: id, Message: msg}); err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(<-ran, ":")
		if took != "" && name != took {
			t.Fatalf("task %s ran on %s, the session's earlier tasks on %s", id, name, took)
		}
		took = name
	}
	drainee, drainAgent, other := nA, a, "b"
	if took == "b" {
		drainee, drainAgent, other = nB, b, "a"
	}
	// That agent drains (a rolling restart): the sentinel moves the session and sends every
	// new by-capability call to the other agent.
	drainCtx, stopDrain := context.WithCancel(ctx)
	drained := make(chan error, 1)
	go func() { drained <- drainee.Drain(drainCtx) }() // owned by the test: ends with stopDrain
	defer func() { stopDrain(); <-drained }()
	<-drainee.DrainRequested()
	unpinned := ByCapabilities(cli, "count.v1")
	waitFor(t, "by-capability calls going to "+other, func() bool {
		_, err := unpinned.GetTaskStatus(ctx, TaskQueryParams{ID: ids[0]})
		return remoteCode(t, err) == CodeTaskNotFound
	})

	for _, id := range ids {
		if got, err := p.GetTaskStatus(ctx, TaskQueryParams{ID: id}); err != nil || got.Status.State != StateWorking {
			t.Fatalf("pinned tasks/get %s = %+v, %v", id, got, err)
		}
	}
	u, err := p.Resubscribe(ctx, TaskIDParams{ID: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := u.Next(ctx); err != nil || ev.Status == nil || ev.Status.Status.State != StateWorking {
		t.Fatalf("pinned resubscribe first event %+v, %v", ev, err)
	}
	if got, err := p.CancelTask(ctx, TaskIDParams{ID: ids[0]}); err != nil || got.Status.State != StateCanceled {
		t.Fatalf("pinned tasks/cancel = %+v, %v", got, err)
	}
	for {
		ev, err := u.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("resubscribe stream: %v", err)
		}
		if ev.Status != nil && ev.Status.Final && ev.Status.Status.State != StateCanceled {
			t.Fatalf("final event %+v", ev.Status)
		}
	}
	if got, err := drainAgent.GetTaskStatus(ctx, TaskQueryParams{ID: ids[0]}); err != nil || got.Status.State != StateCanceled {
		t.Fatalf("agent %s's own view of %s = %+v, %v", took, ids[0], got, err)
	}
	s, err := p.Subscribe(ctx, TaskSendParams{ID: ids[1], Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Next(ctx); err != nil || ev.Status == nil || ev.Status.Status.State != StateWorking {
		t.Fatalf("pinned sendSubscribe first event %+v, %v", ev, err)
	}
	_ = s.Close()
	select {
	case got := <-ran:
		t.Fatalf("a pinned call started a task: %s", got)
	default:
	}
	// A new task goes where the sentinel sends it now (b), and is pinned there.
	if _, err := p.StartTask(ctx, TaskSendParams{ID: "t4", Message: msg}); err != nil {
		t.Fatal(err)
	}
	if got := <-ran; got != other+":t4" {
		t.Fatalf("t4 ran as %s, want on %s", got, other)
	}
	if got, err := p.CancelTask(ctx, TaskIDParams{ID: "t4"}); err != nil || got.Status.State != StateCanceled {
		t.Fatalf("tasks/cancel t4 = %+v, %v", got, err)
	}
}

// TestProxyPinGone: the agent a task is pinned to is gone: the pinned call is NO_ROUTE, not
// another agent's answer about a task it never had.
func TestProxyPinGone(t *testing.T) {
	url := fabric(t)
	ctx := context.Background()
	nA, cli := connect(t, url, "fame.fabric"), connect(t, url)
	a := newAgent(t, Options{Background: true, Run: func(ctx context.Context, _ *TaskContext) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	if err := Serve(ctx, nA, "gone@fame.fabric", a, nil, "gone.v1"); err != nil {
		t.Fatal(err)
	}
	p := ByCapabilities(cli, "gone.v1")
	msg, _ := NewMessage("user", "go")
	if _, err := p.StartTask(ctx, TaskSendParams{ID: "g1", Message: msg}); err != nil {
		t.Fatal(err)
	}
	_ = nA.Close()
	nB := connect(t, url, "fame.fabric")
	b := newAgent(t, Options{Run: echoRun})
	if err := Serve(ctx, nB, "gone2@fame.fabric", b, nil, "gone.v1"); err != nil {
		t.Fatal(err)
	}
	// nA.Close returns before the sentinel has processed the detach: a call in that instant
	// is forwarded to the closing connection and nacked ROUTE_CONNECTOR_CLOSED. Wait the
	// detach out; what must never come is an answer from B.
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err = p.GetTaskStatus(ctx, TaskQueryParams{ID: "g1"})
		var nack *node.NackError
		if !errors.As(err, &nack) || nack.Code != envelope.CodeRouteConnectorClosed || time.Now().After(deadline) {
			break
		}
	}
	if !errors.Is(err, node.ErrNoRoute) {
		t.Fatalf("pinned call to a gone agent: %v, want NO_ROUTE", err)
	}
	// Bounded: past maxPins the oldest pins are forgotten.
	for i := range maxPins + 10 {
		p.pin(fmt.Sprintf("x%d", i), "/s/c")
	}
	if len(p.pins) != maxPins || p.pinned("g1") != "" || p.pinned("x9") != "" || p.pinned(fmt.Sprintf("x%d", maxPins+9)) != "/s/c" {
		t.Fatalf("pins not bounded: %d", len(p.pins))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
