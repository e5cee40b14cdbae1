package agent

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/fame-go/fame/node"
)

// onlyAgent hides TaskAgent's ResubscribeTask: an Agent as the reference's are.
type onlyAgent struct{ Agent }

// TestResubscribe: tasks/resubscribe follows a task the agent has (status first, then to the
// end), answers a finished one with its final status, never starts one (-32001 for an
// unknown id); an agent without it answers -32601 Method not found as the reference's RPC
// adapters do; push notification config is -32003 both ways, as the reference's base agent.
func TestResubscribe(t *testing.T) {
	url := fabric(t)
	srv, cli := connect(t, url, "fame.fabric"), connect(t, url)
	ctx := context.Background()
	release := make(chan struct{})
	a := newAgent(t, Options{Run: slowRun(release), Background: true})
	if err := Serve(ctx, srv, "re@fame.fabric", a, nil); err != nil {
		t.Fatal(err)
	}
	p := ByAddress(cli, "re@fame.fabric")
	msg, _ := NewMessage("user", "go")

	u, err := p.Resubscribe(ctx, TaskIDParams{ID: "nobody"})
	if err == nil {
		_, err = u.Next(ctx)
	}
	if remoteCode(t, err) != CodeTaskNotFound {
		t.Fatalf("resubscribe to an unknown task: %v", err)
	}
	if _, err := p.GetTaskStatus(ctx, TaskQueryParams{ID: "nobody"}); remoteCode(t, err) != CodeTaskNotFound {
		t.Fatalf("resubscribe started a task: %v", err)
	}
	if _, err := p.StartTask(ctx, TaskSendParams{ID: "r1", Message: msg}); err != nil {
		t.Fatal(err)
	}
	u, err = p.Resubscribe(ctx, TaskIDParams{ID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := u.Next(ctx); err != nil || ev.Status == nil || ev.Status.Status.State != StateWorking {
		t.Fatalf("first event %+v, %v", ev, err)
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
	// Finished: one final event, then the end.
	u, err = p.Resubscribe(ctx, TaskIDParams{ID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := u.Next(ctx); err != nil || ev.Status == nil || !ev.Status.Final {
		t.Fatalf("finished task's event %+v, %v", ev, err)
	}
	if _, err := u.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the final event: %v", err)
	}
	if err := cli.Call(ctx, "re@fame.fabric", MethodResubscribe, "not an object", nil); remoteCode(t, err) != CodeInvalidParams {
		t.Fatalf("bad params: %v", err)
	}

	// An agent without ResubscribeTask: -32601 as the reference.
	if err := Serve(ctx, srv, "plain@fame.fabric", onlyAgent{a}, nil); err != nil {
		t.Fatal(err)
	}
	err = cli.Call(ctx, "plain@fame.fabric", MethodResubscribe, TaskIDParams{ID: "r1"}, nil)
	var re *node.RemoteError
	if !errors.As(err, &re) || re.Code != CodeMethodNotFound || re.Message != "Method not found" {
		t.Fatalf("resubscribe on a plain agent: %v", err)
	}
	for _, m := range []string{MethodPushSet, MethodPushGet} {
		err := cli.Call(ctx, "plain@fame.fabric", m, map[string]any{"id": "r1", "pushNotificationConfig": map[string]string{"url": "https://x.example"}}, nil)
		if !errors.As(err, &re) || re.Code != CodePushNotificationNotSupported || re.Message != "Push Notification is not supported" {
			t.Fatalf("%s: %v", m, err)
		}
	}
}
