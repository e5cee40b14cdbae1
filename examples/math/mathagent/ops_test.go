package mathagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fame-go/fame/node"
)

func TestUnaryOps(t *testing.T) {
	ops := Ops("math-1")
	tests := []struct {
		op, params string
		want       string
		wantErr    error
	}{
		{"add", `{"x":3,"y":4}`, `7`, nil},
		{"add", `{"x":1.5,"y":1}`, `2.5`, nil},
		{"multiply", `{"x":6,"y":7}`, `42`, nil},
		{"multiply", `{"x":-2,"y":0.5}`, `-1`, nil},
		{"add", `{"x":3}`, ``, node.ErrInvalidParams},
		{"add", `{"x":"3","y":4}`, ``, node.ErrInvalidParams},
		{"multiply", `[1,2]`, ``, node.ErrInvalidParams},
		{"whoami", `{}`, `"math-1"`, nil},
	}
	for _, tt := range tests {
		res, err := ops[tt.op].Unary(context.Background(), json.RawMessage(tt.params))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s(%s) err = %v, want %v", tt.op, tt.params, err, tt.wantErr)
			}
			continue
		}
		b, _ := json.Marshal(res)
		if err != nil || string(b) != tt.want {
			t.Errorf("%s(%s) = %s, %v; want %s", tt.op, tt.params, b, err, tt.want)
		}
	}
}

func TestFibStream(t *testing.T) {
	tests := []struct {
		params, want string
		wantErr      bool
	}{
		{`{"n":10}`, `[0 1 1 2 3 5 8 13 21 34]`, false},
		{`{"n":0}`, `[]`, false},
		{`{"n":1}`, `[0]`, false},
		{`{"n":-1}`, ``, true},
		{`{"n":1000}`, ``, true},
		{`{}`, ``, true},
	}
	for _, tt := range tests {
		var got []any
		err := Ops("x")["fib_stream"].Stream(context.Background(), json.RawMessage(tt.params), func(v any) error {
			got = append(got, v)
			return nil
		})
		if tt.wantErr {
			if !errors.Is(err, node.ErrInvalidParams) {
				t.Errorf("fib_stream(%s) err = %v", tt.params, err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tt.want && !(tt.want == "[]" && len(got) == 0) {
			t.Errorf("fib_stream(%s) = %v, %v; want %s", tt.params, got, err, tt.want)
		}
	}
	// The largest allowed stream still fits int64 and stays increasing.
	var last int64 = -1
	err := Ops("x")["fib_stream"].Stream(context.Background(), json.RawMessage(fmt.Sprintf(`{"n":%d}`, maxFib)), func(v any) error {
		x := v.(int64)
		if x < last {
			return fmt.Errorf("overflow: %d after %d", x, last)
		}
		last = x
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestFibStreamStopsOnEmitError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Ops("x")["fib_stream"].Stream(context.Background(), json.RawMessage(`{"n":10}`), func(any) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("err = %v after %d items, want stop after 3", err, n)
	}
}

// TestExecLog: keyed executions are logged once each with replica, op, key and attempt; calls
// without a key and refused params are not.
func TestExecLog(t *testing.T) {
	var buf bytes.Buffer
	ops := OpsWithLog("r1", NewExecLog(&buf, "r1"))
	if _, err := ops["add"].Unary(context.Background(), json.RawMessage(`{"x":1,"y":2,"idempotency_key":"k1","attempt":2}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := ops["add"].Unary(context.Background(), json.RawMessage(`{"x":1,"y":2}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := ops["multiply"].Unary(context.Background(), json.RawMessage(`{"x":1,"idempotency_key":"bad"}`)); err == nil {
		t.Fatal("multiply without y answered")
	}
	if err := ops["fib_stream"].Stream(context.Background(), json.RawMessage(`{"n":3,"idempotency_key":"s1"}`), func(any) error { return nil }); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log has %d lines, want 2:\n%s", len(lines), buf.String())
	}
	var e Execution
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Key != "k1" || e.Attempt != 2 || e.Replica != "r1" || e.Op != "add" || e.UnixNano == 0 {
		t.Errorf("first line = %+v", e)
	}
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Key != "s1" || e.Op != "fib_stream" {
		t.Errorf("second line = %+v, %v", e, err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestExecLogWriteError: a log that cannot be written reports it and never fails the call.
func TestExecLogWriteError(t *testing.T) {
	l := NewExecLog(failWriter{}, "r1")
	res, err := OpsWithLog("r1", l)["add"].Unary(context.Background(), json.RawMessage(`{"x":1,"y":2,"idempotency_key":"k"}`))
	if err != nil || res != int64(3) {
		t.Fatalf("add = %v, %v", res, err)
	}
	if l.Err() == nil || !strings.Contains(l.Err().Error(), "disk full") {
		t.Errorf("Err() = %v", l.Err())
	}
}
