package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// Outcome of one attempt of a call (or one stream).
const (
	OutAnswered = "answered"  // the reply (a unary result, or every item of a stream and its end)
	OutNacked   = "nacked"    // a negative delivery ack (*node.NackError) from the fabric
	OutRemote   = "remote"    // the operation answered with an error (*node.RemoteError)
	OutError    = "error"     // the SDK failed the call locally (not a timeout)
	OutTimeout  = "timeout"   // nothing before the attempt's deadline
	OutCut      = "truncated" // a stream ended cleanly with items missing, or wrong items
)

// attempt is one try of a logical call, identified by its idempotency key.
type attempt struct {
	Caller  string
	Key     string
	Try     int
	Stream  bool
	Start   time.Time
	End     time.Time
	Outcome string
	Err     string
	Items   int // stream items received
	Slow    bool
	TS      bool // the real TypeScript client's (tsclient.go): counted apart
	// Notice: the SDK ended the attempt with ErrConnectionLost, its report that the connection
	// or the secure channel the call went over was lost (the fabric's SecureClose, or the
	// caller's own socket to a killed sentinel), not a silent stop.
	Notice bool
}

// recorder collects attempts from every caller goroutine.
type recorder struct {
	mu       sync.Mutex
	attempts []attempt
}

func (r *recorder) add(a attempt) {
	r.mu.Lock()
	r.attempts = append(r.attempts, a)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.attempts...)
}

// classify maps a call error to an outcome.
func classify(err error) string {
	var nack *node.NackError
	var remote *node.RemoteError
	switch {
	case err == nil:
		return OutAnswered
	case errors.As(err, &nack):
		return OutNacked
	case errors.As(err, &remote):
		return OutRemote
	case errors.Is(err, node.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return OutTimeout
	default:
		return OutError
	}
}

// caller is one client node of the load.
type caller struct {
	name   string
	stream bool
	slow   bool // the slow-reading client: its attempts are reported apart
	n      *node.Node
	rec    *recorder
	// attemptTimeout bounds one attempt; far above the 4 s the accounting allows after a fault,
	// so that an attempt that would have been answered late is seen as late, not cut short.
	attemptTimeout time.Duration
	pause          time.Duration
	streamN        int
}

// connectCallerTo attaches a client node with env (config.NodeFrom) and delivery; attachURL,
// when set, replaces the URL the admission gives (the slow client's relay).
func connectCallerTo(ctx context.Context, env map[string]string, delivery string, log *slog.Logger, attachURL string) (*node.Node, error) {
	e := mergeEnv(env, map[string]string{"FAME_DELIVERY_PROFILE": delivery})
	cfg, err := config.NodeFrom(config.MapEnv(e))
	if err != nil {
		return nil, fmt.Errorf("chaos: caller config: %w", err)
	}
	cfg.RequestedLogicals = nil
	cfg.Logger = log
	if attachURL != "" {
		cfg.URL = attachURL
		cfg.AttachURL = func(context.Context) (string, error) { return attachURL, nil }
	}
	cctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	n, err := node.Connect(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("chaos: caller connect: %w", err)
	}
	return n, nil
}

type keyedPair struct {
	X       int    `json:"x"`
	Y       int    `json:"y"`
	Key     string `json:"idempotency_key"`
	Attempt int    `json:"attempt"`
}

type keyedN struct {
	N       int    `json:"n"`
	Key     string `json:"idempotency_key"`
	Attempt int    `json:"attempt"`
}

// run issues logical calls numbered after last until stop is closed, each retried with its
// key until answered; once stop is closed the call in progress still gets its retries until
// drainBy. It returns the last number used.
func (c *caller) run(stop <-chan struct{}, drainBy *time.Time, mu *sync.Mutex, last int) int {
	for seq := last + 1; ; seq++ {
		select {
		case <-stop:
			return seq - 1
		default:
		}
		key := fmt.Sprintf("%s-%06d", c.name, seq)
		for try := 1; ; try++ {
			var a attempt
			if c.stream {
				a = c.streamOnce(key, try)
			} else {
				a = c.callOnce(key, seq, try)
			}
			c.rec.add(a)
			if a.Outcome == OutAnswered {
				break
			}
			select {
			case <-stop:
				mu.Lock()
				late := time.Now().After(*drainBy)
				mu.Unlock()
				if late {
					return seq
				}
			default:
			}
			time.Sleep(100 * time.Millisecond)
		}
		if c.pause > 0 {
			time.Sleep(c.pause)
		}
	}
}

func (c *caller) callOnce(key string, seq, try int) attempt {
	a := attempt{Caller: c.name, Key: key, Try: try, Start: time.Now(), Slow: c.slow}
	ctx, cancel := context.WithTimeout(context.Background(), c.attemptTimeout)
	defer cancel()
	var res int
	err := c.n.Call(ctx, mathagent.Address, "add", keyedPair{X: seq, Y: try, Key: key, Attempt: try}, &res)
	a.End = time.Now()
	a.Outcome = classify(err)
	if err != nil {
		a.Err, a.Notice = err.Error(), errors.Is(err, node.ErrConnectionLost)
	} else if res != seq+try {
		a.Outcome, a.Err = OutCut, fmt.Sprintf("add(%d, %d) = %d", seq, try, res)
	}
	return a
}

func (c *caller) streamOnce(key string, try int) attempt {
	a := attempt{Caller: c.name, Key: key, Try: try, Stream: true, Start: time.Now(), Slow: c.slow}
	ctx, cancel := context.WithTimeout(context.Background(), c.attemptTimeout)
	defer cancel()
	st, err := c.n.Stream(ctx, mathagent.Address, "fib_stream", keyedN{N: c.streamN, Key: key, Attempt: try})
	if err != nil {
		a.End, a.Outcome, a.Err = time.Now(), classify(err), err.Error()
		return a
	}
	defer st.Close()
	x, y := int64(0), int64(1)
	for {
		item, err := st.Next(ctx)
		if err == io.EOF {
			a.End = time.Now()
			if a.Items == c.streamN {
				a.Outcome = OutAnswered
			} else {
				a.Outcome, a.Err = OutCut, fmt.Sprintf("ended after %d of %d items", a.Items, c.streamN)
			}
			return a
		}
		if err != nil {
			a.End, a.Outcome, a.Err = time.Now(), classify(err), err.Error()
			a.Notice = errors.Is(err, node.ErrConnectionLost)
			return a
		}
		var v int64
		if json.Unmarshal(item, &v) != nil || v != x {
			a.End, a.Outcome, a.Err = time.Now(), OutCut, fmt.Sprintf("item %d = %s, want %d", a.Items, item, x)
			return a
		}
		x, y = y, x+y
		a.Items++
	}
}
