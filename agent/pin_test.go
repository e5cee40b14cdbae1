package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

// TestProxyPinsTaskToItsAgent: two agents advertise count.v1; a by-capability proxy starts
// tasks on the first one (the sentinel's pick), which then drains (a rolling restart), so
// that the sentinel sends new by-capability calls to the second one. The proxy's tasks/get,
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
	ids := []string{"t1", "t2", "t3"}
	for _, id := range ids {
		if _, err := p.StartTask(ctx, TaskSendParams{ID: id, Message: msg}); err != nil {
			t.Fatal(err)
		}
		if got := <-ran; got != "a:"+id {
			t.Fatalf("task %s ran as %s, want on a (the first provider)", id, got)
		}
	}
	// Agent a drains: new by-capability calls go to b from now on.
	drainCtx, stopDrain := context.WithCancel(ctx)
	defer stopDrain()
	drained := make(chan error, 1)
	go func() { drained <- nA.Drain(drainCtx) }() // owned by the test: ends with stopDrain
	defer func() { stopDrain(); <-drained }()
	<-nA.DrainRequested()
	unpinned := ByCapabilities(cli, "count.v1")
	waitFor(t, "by-capability calls going to b", func() bool {
		_, err := unpinned.GetTaskStatus(ctx, TaskQueryParams{ID: "t1"})
		return remoteCode(t, err) == CodeTaskNotFound
	})

	for _, id := range ids[:2] {
		if got, err := p.GetTaskStatus(ctx, TaskQueryParams{ID: id}); err != nil || got.Status.State != StateWorking {
			t.Fatalf("pinned tasks/get %s = %+v, %v", id, got, err)
		}
	}
	u, err := p.Resubscribe(ctx, TaskIDParams{ID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := u.Next(ctx); err != nil || ev.Status == nil || ev.Status.Status.State != StateWorking {
		t.Fatalf("pinned resubscribe first event %+v, %v", ev, err)
	}
	if got, err := p.CancelTask(ctx, TaskIDParams{ID: "t1"}); err != nil || got.Status.State != StateCanceled {
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
	if got, err := a.GetTaskStatus(ctx, TaskQueryParams{ID: "t1"}); err != nil || got.Status.State != StateCanceled {
		t.Fatalf("agent a's own view of t1 = %+v, %v", got, err)
	}
	s, err := p.Subscribe(ctx, TaskSendParams{ID: "t2", Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Next(ctx); err != nil || ev.Status == nil || ev.Status.Status.State != StateWorking {
		t.Fatalf("pinned sendSubscribe first event %+v, %v (a new task on b would be submitted/working on b)", ev, err)
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
	if got := <-ran; got != "b:t4" {
		t.Fatalf("t4 ran as %s, want on b", got)
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
	_, err := p.GetTaskStatus(ctx, TaskQueryParams{ID: "g1"})
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
