package chaos

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The real TypeScript client (Config.TSClient, overlay profile only): ts/chaos-client.mjs on the
// reference Naylence TS packages that interop/ pins, run with Node 20. The script is written
// into the work directory beside a symlink to interop/node_modules, so that Node resolves the
// packages from there; the harness installs nothing (make chaos-ts runs npm ci in interop/
// first, as make interop does).

//go:embed ts/chaos-client.mjs
var tsClientScript []byte

// tsClient is the running TS client process: its stdout carries one JSON line per attempt.
type tsClient struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan struct{} // closed at its READY line
	read   chan struct{} // closed when its stdout reached EOF (the reader goroutine's exit)
	exited chan struct{} // closed once cmd.Wait returned (the waiter goroutine's exit)
	err    error         // cmd.Wait's, set before exited is closed
}

// tsLine is one attempt as the script prints it.
type tsLine struct {
	Key     string `json:"key"`
	Try     int    `json:"try"`
	StartMS int64  `json:"start_ms"`
	EndMS   int64  `json:"end_ms"`
	Outcome string `json:"outcome"`
	Err     string `json:"err"`
}

// tsOutcome maps the script's outcome to the harness's.
func tsOutcome(o string) string {
	switch o {
	case "answered":
		return OutAnswered
	case "wrong":
		return OutCut
	case "timeout":
		return OutTimeout
	default:
		return OutError
	}
}

// parseTSLine turns one stdout line into an attempt; ok=false for anything else (READY).
func parseTSLine(line string) (attempt, bool) {
	var l tsLine
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &l) != nil || l.Key == "" {
		return attempt{}, false
	}
	a := attempt{Caller: "ts", Key: l.Key, Try: l.Try, TS: true, Start: time.UnixMilli(l.StartMS), End: time.UnixMilli(l.EndMS),
		Outcome: tsOutcome(l.Outcome), Err: l.Err}
	// The reference SDK surfaces a negative delivery ack as an error "Message delivery failed
	// with code 'ROUTE_CONNECTOR_CLOSED': …": a nack, counted by its code like the Go callers'.
	if _, rest, ok := strings.Cut(l.Err, "delivery failed with code '"); ok && a.Outcome == OutError {
		if code, _, ok := strings.Cut(rest, "'"); ok && code != "" {
			a.Outcome, a.Err = OutNacked, fmt.Sprintf("code %q: %s", code, l.Err)
		}
	}
	return a, true
}

// startTSClient starts the TS client attached to the overlay stack at attach; its attempts
// go to rec, its stderr (the runtime's logs) to Dir/logs/ts-client.log.
func startTSClient(cfg Config, attach string, rec *recorder) (*tsClient, error) {
	interop, err := filepath.Abs(cfg.InteropDir)
	if err != nil {
		return nil, fmt.Errorf("chaos: interop directory: %w", err)
	}
	nm := filepath.Join(interop, "node_modules")
	for _, pkg := range []string{"@naylence/runtime", "@naylence/agent-sdk"} {
		if _, err := os.Stat(filepath.Join(nm, pkg, "package.json")); err != nil {
			return nil, fmt.Errorf("chaos: the TS client needs %s in %s (run npm ci in %s, as make chaos-ts does): %w", pkg, nm, interop, err)
		}
	}
	dir := filepath.Join(cfg.Dir, "ts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos-client.mjs"), tsClientScript, 0o644); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	link := filepath.Join(dir, "node_modules")
	_ = os.Remove(link) // a work directory reused by -dir
	if err := os.Symlink(nm, link); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	logf, err := os.Create(filepath.Join(cfg.Dir, "logs", "ts-client.log"))
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	nodeBin := cfg.NodeBin
	if nodeBin == "" {
		nodeBin = "node"
	}
	cmd := exec.Command(nodeBin, "chaos-client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FAME_SECURITY_PROFILE=overlay", "FAME_ADMISSION_PROFILE=open",
		"FAME_AUTHORIZATION_PROFILE=noop", "FAME_DIRECT_ADMISSION_URL="+attach, "FAME_LOG_LEVEL=warning")
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("chaos: %w", err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("chaos: start the TS client (%s): %w", nodeBin, err)
	}
	c := &tsClient{cmd: cmd, stdin: stdin, ready: make(chan struct{}), read: make(chan struct{}), exited: make(chan struct{})}
	// The reader: ends at EOF of stdout, which the process's exit brings.
	go func() {
		defer close(c.read)
		sc := bufio.NewScanner(stdout)
		readyOnce := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "READY" && !readyOnce {
				readyOnce = true
				close(c.ready)
				continue
			}
			if a, ok := parseTSLine(line); ok {
				rec.add(a)
			} else {
				fmt.Fprintln(logf, "stdout:", line)
			}
		}
	}()
	// The waiter: the only caller of cmd.Wait.
	go func() {
		<-c.read
		c.err = cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	select {
	case <-c.ready:
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("chaos: the TS client exited before it was ready (%v): see logs/ts-client.log", c.err)
	case <-time.After(readyTimeout):
		c.kill()
		return nil, fmt.Errorf("chaos: the TS client not ready after %s: see logs/ts-client.log", readyTimeout)
	}
}

// stop closes the client's stdin (it finishes the call in progress, retries included, for up
// to 20 s) and waits for its exit, killing it after 30 s.
func (c *tsClient) stop() error {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.kill()
		return errors.New("chaos: the TS client did not exit within 30 s of its stop; killed")
	}
	if c.err != nil {
		return fmt.Errorf("chaos: the TS client: %w (see logs/ts-client.log)", c.err)
	}
	return nil
}

func (c *tsClient) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// readTSLinkClosed returns the times at which the TS runtime logged upstream_link_closed
// ("2026-12-04T19:47:38.507Z | WARNING | …upstream_session_manager | upstream_link_closed …"):
// when it noticed that its connection to the sentinel had died.
func readTSLinkClosed(path string) []time.Time {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []time.Time
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "upstream_link_closed") {
			continue
		}
		stamp, _, _ := strings.Cut(line, " ")
		if t, err := time.Parse(time.RFC3339Nano, stamp); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// onDeadLink reports whether the TS attempt a went over a connection a kill -9 of the
// sentinel had killed: the kill came while a was in flight, or before a started while the
// runtime had not yet noticed it (no upstream_link_closed between the kill and a's start).
// The reference TS SDK neither fails nor re-sends such a call (the Go SDK does, fix 1), and
// its runtime notices a killed sentinel seconds late (4.4 and 8 s in the runs of 2026-12-04),
// so a call sent in between waits out its timeout.
func onDeadLink(a attempt, faults []Fault, linkClosed []time.Time) bool {
	for _, f := range faults {
		if f.Kind != FaultSentinelKill || f.Start.After(a.End) {
			continue
		}
		if !f.Start.Before(a.Start) {
			return true // killed under the call
		}
		noticed := false
		for _, t := range linkClosed {
			if t.After(f.Start) && t.Before(a.Start) {
				noticed = true
				break
			}
		}
		if !noticed && len(linkClosed) > 0 && lastAfter(linkClosed, f.Start) {
			return true // sent before the runtime noticed the kill
		}
	}
	return false
}

// lastAfter reports whether some t in ts comes after from: the runtime did notice the kill
// (later), so the connection is known to have been dead, not merely quiet.
func lastAfter(ts []time.Time, from time.Time) bool {
	for _, t := range ts {
		if t.After(from) {
			return true
		}
	}
	return false
}
