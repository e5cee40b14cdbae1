package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/sentinel"
)

// fabric starts an open-profile sentinel on loopback and returns its attach URL.
func fabric(t *testing.T) string {
	t.Helper()
	opts, err := sentinel.LoadOptions("", func(k string) (string, bool) {
		if k == "FAME_ADMISSION_PROFILE" {
			return "open", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sentinel.New(opts, sentinel.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "ws://" + l.Addr().String() + "/fame/v1/attach/ws/downstream"
}

func connect(t *testing.T, url string, logicals ...string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := node.Connect(ctx, node.Config{URL: url, RequestedLogicals: logicals,
		Logger: slog.New(slog.DiscardHandler), CallTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func newAgent(t *testing.T, opts Options) *TaskAgent {
	t.Helper()
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// echoRun completes with the payload it was given, upper-cased when it is text.
func echoRun(_ context.Context, tc *TaskContext) (any, error) {
	p, err := tc.Payload()
	if err != nil {
		return nil, err
	}
	var s string
	if json.Unmarshal(p, &s) == nil {
		return strings.ToUpper(s), nil
	}
	return p, nil
}

// slowRun reports progress until canceled or released.
func slowRun(release <-chan struct{}) RunFunc {
	return func(ctx context.Context, tc *TaskContext) (any, error) {
		m, _ := NewMessage("agent", "started")
		tc.Update(StateWorking, &m)
		select {
		case <-release:
			return map[string]int{"answer": 42}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func remoteCode(t *testing.T, err error) int {
	t.Helper()
	var re *node.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("want a *node.RemoteError, got %T %v", err, err)
	}
	return re.Code
}

func TestAgentSyncTaskAndCard(t *testing.T) {
	url := fabric(t)
	srv, cli := connect(t, url, "fame.fabric"), connect(t, url)
	a := newAgent(t, Options{Run: echoRun, Card: AgentCard{Name: "echo", URL: "fame://echo@fame.fabric", Version: "1"}})
	ctx := context.Background()
	if err := Serve(ctx, srv, "echo@fame.fabric", a, nil); err != nil {
		t.Fatal(err)
	}
	p := ByAddress(cli, "echo@fame.fabric")
	got, err := p.RunTask(ctx, "hello", "")
	if err != nil || string(got) != `"HELLO"` {
		t.Fatalf("RunTask = %s, %v", got, err)
	}
	msg, _ := NewMessage("user", map[string]int{"x": 1})
	task, err := p.StartTask(ctx, TaskSendParams{ID: "t1", Message: msg})
	if err != nil || task.Status.State != StateCompleted || task.ID != "t1" {
		t.Fatalf("StartTask = %+v, %v", task, err)
	}
	if pl, _ := task.Status.Message.Payload(); string(pl) != `{"x":1}` {
		t.Fatalf("result payload %s", pl)
	}
	if st, err := p.GetTaskStatus(ctx, TaskQueryParams{ID: "t1"}); err != nil || st.Status.State != StateCompleted {
		t.Fatalf("GetTaskStatus = %+v, %v", st, err)
	}
	if _, err := p.GetTaskStatus(ctx, TaskQueryParams{ID: "nope"}); remoteCode(t, err) != CodeTaskNotFound {
		t.Fatalf("unknown task: %v", err)
	}
	card, err := p.AgentCard(ctx)
	if err != nil || card.Name != "echo" || !card.Capabilities.Streaming {
		t.Fatalf("card = %+v, %v", card, err)
	}
	// The reference's codes for the methods a base agent does not support / bad params.
	if err := cli.Call(ctx, "echo@fame.fabric", MethodPushGet, map[string]string{"id": "t1"}, nil); remoteCode(t, err) != CodePushNotificationNotSupported {
		t.Fatalf("push get: %v", err)
	}
	if err := cli.Call(ctx, "echo@fame.fabric", MethodSend, map[string]any{"id": 5}, nil); remoteCode(t, err) != CodeInvalidParams {
		t.Fatalf("bad params: %v", err)
	}
	if err := cli.Call(ctx, "echo@fame.fabric", MethodSend, map[string]any{"id": "t2", "message": map[string]any{"role": "robot", "parts": []any{}}}, nil); remoteCode(t, err) != CodeInvalidParams {
		t.Fatalf("bad role: %v", err)
	}
}

func TestAgentBackgroundSubscribeAndCancel(t *testing.T) {
	url := fabric(t)
	srv, cli := connect(t, url, "fame.fabric"), connect(t, url)
	release := make(chan struct{})
	a := newAgent(t, Options{Run: slowRun(release), Background: true})
	ctx := context.Background()
	if err := Serve(ctx, srv, "slow@fame.fabric", a, nil); err != nil {
		t.Fatal(err)
	}
	p := ByAddress(cli, "slow@fame.fabric")
	msg, _ := NewMessage("user", "go")

	// Completed: the subscriber sees working, then the final completed status.
	task, err := p.StartTask(ctx, TaskSendParams{ID: "done", Message: msg})
	if err != nil || task.Status.State != StateWorking {
		t.Fatalf("background StartTask = %+v, %v", task, err)
	}
	if _, err := p.StartTask(ctx, TaskSendParams{ID: "done", Message: msg}); remoteCode(t, err) != CodeInvalidParams {
		t.Fatalf("duplicate running task: %v", err)
	}
	u, err := p.Subscribe(ctx, TaskSendParams{ID: "done", Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	first, err := u.Next(ctx)
	if err != nil || first.Status == nil || first.Status.Status.State != StateWorking {
		t.Fatalf("first event %+v, %v", first, err)
	}
	close(release)
	var last TaskEvent
	for {
		ev, err := u.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	if last.Status == nil || !last.Status.Final || last.Status.Status.State != StateCompleted {
		t.Fatalf("last event %+v", last.Status)
	}

	// Canceled: tasks/cancel answers canceled at once and the run's context is canceled.
	hold := make(chan struct{})
	defer close(hold)
	seen := make(chan error, 1)
	b := newAgent(t, Options{Background: true, Run: func(ctx context.Context, tc *TaskContext) (any, error) {
		<-ctx.Done()
		seen <- ctx.Err()
		return nil, ctx.Err()
	}})
	if err := Serve(ctx, srv, "cancel@fame.fabric", b, nil); err != nil {
		t.Fatal(err)
	}
	q := ByAddress(cli, "cancel@fame.fabric")
	if _, err := q.StartTask(ctx, TaskSendParams{ID: "c1", Message: msg}); err != nil {
		t.Fatal(err)
	}
	ct, err := q.CancelTask(ctx, TaskIDParams{ID: "c1"})
	if err != nil || ct.Status.State != StateCanceled {
		t.Fatalf("CancelTask = %+v, %v", ct, err)
	}
	select {
	case err := <-seen:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run saw %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the task's context was not canceled")
	}
	// c1 finished, so its id may run again (the reference's re-use of a finished id).
	if task, err := q.StartTask(ctx, TaskSendParams{ID: "c1", Message: msg}); err != nil || task.Status.State != StateWorking {
		t.Fatalf("re-run of a finished id = %+v, %v", task, err)
	}
}

func TestAgentStoreBoundedAndTTL(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	a := newAgent(t, Options{Run: slowRun(release), Background: true, MaxTasks: 2, TTL: time.Hour})
	ctx := context.Background()
	msg, _ := NewMessage("user", "x")
	for _, id := range []string{"a", "b"} {
		if _, err := a.StartTask(ctx, TaskSendParams{ID: id, Message: msg}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.StartTask(ctx, TaskSendParams{ID: "c", Message: msg})
	if !errors.Is(err, ErrRateLimitExceeded) || toRPC(err).Code != CodeRateLimitExceeded {
		t.Fatalf("third running task: %v", err)
	}
	if _, err := a.CancelTask(ctx, TaskIDParams{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	// a finished: it is evicted to make room for c.
	if _, err := a.StartTask(ctx, TaskSendParams{ID: "c", Message: msg}); err != nil {
		t.Fatalf("after a finished: %v", err)
	}
	if _, err := a.GetTaskStatus(ctx, TaskQueryParams{ID: "a"}); !errors.Is(err, ErrTaskNotFound) {
		t.Fatalf("evicted a: %v", err)
	}
	// TTL: a finished task is forgotten once it expires.
	b := newAgent(t, Options{Run: echoRun, TTL: time.Millisecond})
	if _, err := b.StartTask(ctx, TaskSendParams{ID: "e", Message: msg}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := b.GetTaskStatus(ctx, TaskQueryParams{ID: "e"})
		if errors.Is(err, ErrTaskNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task e never expired: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAgentMaxLifetimeAndPanic(t *testing.T) {
	ctx := context.Background()
	msg, _ := NewMessage("user", "x")
	a := newAgent(t, Options{Run: slowRun(nil), MaxLifetime: 20 * time.Millisecond})
	task, err := a.StartTask(ctx, TaskSendParams{ID: "l", Message: msg})
	if err != nil || task.Status.State != StateCanceled {
		t.Fatalf("past MaxLifetime = %+v, %v", task, err)
	}
	b := newAgent(t, Options{Run: func(context.Context, *TaskContext) (any, error) { panic("boom") }})
	task, err = b.StartTask(ctx, TaskSendParams{ID: "p", Message: msg})
	if err != nil || task.Status.State != StateFailed || !strings.Contains(task.Status.Message.Parts[0].Text, "boom") {
		t.Fatalf("panicking run = %+v, %v", task, err)
	}
}

func TestAgentSlowSubscriberDropped(t *testing.T) {
	ctx := context.Background()
	msg, _ := NewMessage("user", "x")
	step := make(chan struct{})
	a := newAgent(t, Options{Background: true, SubscriberQueue: 1, Run: func(ctx context.Context, tc *TaskContext) (any, error) {
		<-step
		for i := 0; i < 5; i++ {
			tc.Update(StateWorking, nil)
		}
		<-ctx.Done()
		return nil, nil
	}})
	if _, err := a.StartTask(ctx, TaskSendParams{ID: "s", Message: msg}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	err := a.SubscribeToTaskUpdates(ctx, TaskSendParams{ID: "s", Message: msg}, func(TaskEvent) error {
		once.Do(func() {
			close(step)
			// Wait until the task has queued past this subscriber's bound.
			for {
				a.mu.Lock()
				n := len(a.tasks["s"].subs)
				a.mu.Unlock()
				if n == 0 {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "fell") {
		t.Fatalf("slow subscriber: %v", err)
	}
	if task, _ := a.GetTaskStatus(ctx, TaskQueryParams{ID: "s"}); task.Status.State != StateWorking {
		t.Fatalf("the task was disturbed: %+v", task.Status)
	}
}

type addIn struct{ A, B int }

func TestAgentTypedAndCapabilities(t *testing.T) {
	url := fabric(t)
	srv, cli := connect(t, url, "fame.fabric"), connect(t, url)
	ctx := context.Background()
	a := newAgent(t, Options{Run: echoRun})
	extra := node.Ops{
		"add": Handle(func(_ context.Context, in addIn) (int, error) { return in.A + in.B, nil }),
		"count": HandleStream(func(_ context.Context, in struct{ N int }, emit func(int) error) error {
			for i := 0; i < in.N; i++ {
				if err := emit(i); err != nil {
					return err
				}
			}
			return nil
		}),
		"deny": Handle(func(context.Context, struct{}) (int, error) { return 0, ErrUnauthorized }),
	}
	if err := Serve(ctx, srv, "calc@fame.fabric", a, extra, "calc.v1"); err != nil {
		t.Fatal(err)
	}
	if got, err := Call[int](ctx, cli, "calc@fame.fabric", "add", addIn{3, 4}); err != nil || got != 7 {
		t.Fatalf("typed add = %d, %v", got, err)
	}
	st, err := CallStream[int](ctx, cli, "calc@fame.fabric", "count", map[string]int{"N": 3})
	if err != nil {
		t.Fatal(err)
	}
	var items []int
	for {
		v, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, v)
	}
	if len(items) != 3 || items[2] != 2 {
		t.Fatalf("typed stream = %v", items)
	}
	if err := cli.Call(ctx, "calc@fame.fabric", "add", "not an object", nil); err == nil {
		t.Fatal("bad typed params accepted")
	}
	if err := cli.Call(ctx, "calc@fame.fabric", "deny", nil, nil); remoteCode(t, err) != CodeInvalidRequest {
		t.Fatalf("unauthorized: %v", err)
	}
	// By capability: the sentinel routes to the node that advertised calc.v1.
	byCap := ByCapabilities(cli, "calc.v1")
	var sum int
	if err := byCap.Call(ctx, "add", addIn{20, 22}, &sum); err != nil || sum != 42 {
		t.Fatalf("capability call = %d, %v", sum, err)
	}
	if got, err := byCap.RunTask(ctx, "cap", ""); err != nil || string(got) != `"CAP"` {
		t.Fatalf("capability RunTask = %s, %v", got, err)
	}
	// Nobody advertised it: a NO_ROUTE nack, not a hang.
	err = ByCapabilities(cli, "nobody.v1").Call(ctx, "add", addIn{1, 1}, nil)
	if !errors.Is(err, node.ErrNoRoute) {
		t.Fatalf("unknown capability: %v", err)
	}
}

func TestAgentSubscribersBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msg, _ := NewMessage("user", "x")
	a := newAgent(t, Options{Background: true, MaxSubscribers: 2, Run: slowRun(nil)})
	if _, err := a.StartTask(ctx, TaskSendParams{ID: "m", Message: msg}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			_ = a.SubscribeToTaskUpdates(ctx, TaskSendParams{ID: "m", Message: msg}, func(TaskEvent) error {
				once.Do(func() { started <- struct{}{} })
				return nil
			})
		}()
	}
	<-started
	<-started
	err := a.SubscribeToTaskUpdates(ctx, TaskSendParams{ID: "m", Message: msg}, func(TaskEvent) error { return nil })
	if !errors.Is(err, ErrRateLimitExceeded) {
		t.Fatalf("third subscriber: %v", err)
	}
	cancel()
	wg.Wait()
}
