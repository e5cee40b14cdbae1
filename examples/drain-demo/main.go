// Command drain-demo shows a replica drain (`make drain-demo`): it starts a sentinel on a
// loopback port (overlay security, sticky sessions, channel encryption), two math replicas
// and six client sessions that call the pool in a loop, then drains the replica holding the
// most sessions with POST /admin/replicas/<id>/drain. It prints the sentinel's answer, every
// session as it moves (from which replica to which, read from the sentinel's log), the
// drained replica leaving once the sentinel reports it drained, where each session is
// pinned afterwards, and the call count with the failures (there must be none: the exit
// status is 1 otherwise). Everything runs in this one process over real WebSockets.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/sentinel"
)

const sessions = 6

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "drain-demo:", err)
		os.Exit(1)
	}
}

func run() error {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	adminToken := hex.EncodeToString(tok)
	env := map[string]string{"FAME_ADMIN_TOKEN": adminToken, "FAME_SECURITY_PROFILE": "overlay"}
	opts, err := sentinel.LoadOptions("", config.Getenv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		return err
	}
	// The sentinel's log goes through a pipe: the demo prints the drain's lines from it.
	pr, pw := io.Pipe()
	defer pw.Close()
	moves := make(chan string, 64)
	go watchLog(pr, moves)
	s, err := sentinel.New(opts, sentinel.WithLogger(slog.New(slog.NewTextHandler(pw, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = s.Serve(ctx, l); close(served) }()
	defer func() { stop(); <-served }()
	base := "http://" + l.Addr().String()
	url := "ws://" + l.Addr().String() + "/fame/v1/attach/ws/downstream"
	fmt.Println("== sentinel on", l.Addr().String(), "(overlay security, sticky sessions)")

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := func(id string, logicals ...string) node.Config {
		return node.Config{URL: url, SystemID: id, RequestedLogicals: logicals, Logger: quiet,
			SecurityProfile: "overlay", EncryptionLevel: "channel", CallTimeout: 20 * time.Second}
	}
	replicas := map[string]*node.Node{}
	left := map[string]chan struct{}{}
	for _, name := range []string{"replica1", "replica2"} {
		n, err := node.Connect(ctx, cfg(name, "*.fame.fabric"))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := n.Serve(ctx, mathagent.Address, mathagent.Ops(name)); err != nil {
			return err
		}
		replicas[name] = n
		left[name] = make(chan struct{})
		// What math-agent does on SIGTERM or when the sentinel drains it: Drain, then exit.
		go func() {
			<-n.DrainRequested()
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := n.Drain(dctx)
			fmt.Printf("== %s: the sentinel reports it drained (err=%v); it exits\n", name, err)
			_ = n.Close()
			close(left[name])
		}()
		fmt.Println("== started", name)
	}

	clients := make([]*node.Node, sessions)
	pinned := map[string]int{}
	for i := range clients {
		c, err := node.Connect(ctx, cfg(fmt.Sprintf("client%d", i+1)))
		if err != nil {
			return err
		}
		defer c.Close()
		clients[i] = c
		var who string
		if err := c.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who); err != nil {
			return err
		}
		pinned[who]++
		fmt.Printf("   session of client%d is pinned to %s\n", i+1, who)
	}

	var calls, fails atomic.Int64
	var firstErr atomic.Value
	loadStop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := 0; ; x++ {
				select {
				case <-loadStop:
					return
				default:
				}
				var sum int
				err := c.Call(ctx, mathagent.Address, "add", map[string]any{"x": x, "y": 1}, &sum)
				calls.Add(1)
				if err == nil && sum != x+1 {
					err = fmt.Errorf("add(%d, 1) = %d", x, sum)
				}
				if err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)

	victim := "replica1"
	if pinned["replica2"] > pinned["replica1"] {
		victim = "replica2"
	}
	fmt.Printf("== draining %s (%d sessions pinned) under load: POST /admin/replicas/%s/drain\n", victim, pinned[victim], victim)
	req, _ := http.NewRequest(http.MethodPost, base+"/admin/replicas/"+victim+"/drain", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("   %s %s", resp.Status, body)

	deadline := time.After(40 * time.Second)
	for done := false; !done; {
		select {
		case m := <-moves:
			fmt.Println("  ", m)
		case <-left[victim]:
			done = true
		case <-deadline:
			return errors.New("the drained replica did not leave within 40 s")
		}
	}
	time.Sleep(300 * time.Millisecond)
	for drained := true; drained; {
		select {
		case m := <-moves:
			fmt.Println("  ", m)
		default:
			drained = false
		}
	}
	close(loadStop)
	wg.Wait()

	fmt.Println("== after the drain")
	for i, c := range clients {
		var who string
		if err := c.Call(ctx, mathagent.Address, "whoami", map[string]any{}, &who); err != nil {
			return err
		}
		fmt.Printf("   session of client%d is pinned to %s\n", i+1, who)
	}
	fmt.Printf("== %d calls during the drain, %d failed\n", calls.Load(), fails.Load())
	for name, n := range replicas {
		if name != victim {
			_ = n.Close()
		}
	}
	if fails.Load() > 0 {
		return fmt.Errorf("%d calls failed, first: %v", fails.Load(), firstErr.Load())
	}
	fmt.Println("every call succeeded")
	return nil
}

var (
	reMoved   = regexp.MustCompile(`msg="replica drain: session moved off" .*from=(\S+) client=(\S+)`)
	reRepin   = regexp.MustCompile(`msg="replica drain: session re-pinned" .*from=(\S+) to=(\S+) client=(\S+)`)
	reDrained = regexp.MustCompile(`msg="replica drained: it may exit now" .*replica=(\S+) result=(\S+) sessions_moved=(\d+)`)
	reStarted = regexp.MustCompile(`msg="replica drain started`)
)

// watchLog turns the sentinel's drain log lines into the demo's lines.
func watchLog(r io.Reader, out chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var s string
		switch {
		case reRepin.MatchString(line):
			m := reRepin.FindStringSubmatch(line)
			s = fmt.Sprintf("session of %s moved: %s -> %s", m[3], m[1], m[2])
		case reMoved.MatchString(line):
			m := reMoved.FindStringSubmatch(line)
			s = fmt.Sprintf("session of %s leaves %s (SecureClose sent; it re-opens its channel on its next call)", m[2], m[1])
		case reDrained.MatchString(line):
			m := reDrained.FindStringSubmatch(line)
			s = fmt.Sprintf("sentinel: %s drained (%s), %s sessions moved", m[1], m[2], m[3])
		case reStarted.MatchString(line):
			s = "sentinel: drain started"
		default:
			continue
		}
		select {
		case out <- s:
		default:
		}
	}
}
