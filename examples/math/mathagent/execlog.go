package mathagent

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Execution log (opt-in): the chaos harness (package chaos) matches executions to calls to
// count duplicates, so every execution of an operation whose params carry an idempotency key
// is written as one JSON line before its reply is sent. Params without a key are not logged.

// KeyParam and AttemptParam are the params fields a caller sets: the idempotency key (the
// same on every retry of one logical call) and the caller's attempt number.
const (
	KeyParam     = "idempotency_key"
	AttemptParam = "attempt"
)

// Execution is one line of the log.
type Execution struct {
	Key     string `json:"key"`
	Attempt int    `json:"attempt"`
	Replica string `json:"replica"`
	Op      string `json:"op"`
	// UnixNano is when the operation ran (before its reply left).
	UnixNano int64 `json:"t"`
}

// ExecLog writes Executions to w, one Write per line so that lines from concurrent handlers
// never interleave and an O_APPEND file keeps every completed line across a kill -9 (the
// line is in the kernel once Write returns).
type ExecLog struct {
	mu      sync.Mutex
	w       io.Writer
	replica string
	err     error // the first write error; later records are dropped
}

// NewExecLog logs the executions of replica to w.
func NewExecLog(w io.Writer, replica string) *ExecLog { return &ExecLog{w: w, replica: replica} }

// Err returns the first write error, if any (the log stops at it; the operations go on).
func (l *ExecLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

type keyed struct {
	Key     string `json:"idempotency_key"`
	Attempt int    `json:"attempt"`
}

// record logs op's execution when p carries a key. It never fails the operation: a log that
// cannot be written is reported by Err.
func (l *ExecLog) record(op string, p json.RawMessage) {
	if l == nil {
		return
	}
	var k keyed
	if json.Unmarshal(p, &k) != nil || k.Key == "" {
		return
	}
	line, err := json.Marshal(Execution{Key: k.Key, Attempt: k.Attempt, Replica: l.replica, Op: op, UnixNano: time.Now().UnixNano()})
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if _, err := l.w.Write(line); err != nil {
		l.err = fmt.Errorf("mathagent: execution log: %w", err)
	}
}
