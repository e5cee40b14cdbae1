package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one supervised role (the sentinel, a replica, an admission service): a command line
// and environment that can be started again after a kill, and the instances (one per start)
// it has had.
type proc struct {
	name    string
	argv    []string
	env     []string
	logDir  string
	metrics string // http://host:port/metrics or "" (then goroutines are not sampled)
	token   string // bearer for metrics
	// goroutineProfile, when set (replicas: math-agent's /debug/pprof/goroutine?debug=1), is
	// read instead of go_goroutines, to count the goroutines less the SDK's resident handler
	// workers (residentWorkerFrame).
	goroutineProfile string

	mu        sync.Mutex
	cur       *instance
	instances []*instance
}

// instance is one OS process of a proc, from start to exit.
type instance struct {
	proc    *proc
	cmd     *exec.Cmd
	pid     int
	started time.Time
	ready   chan struct{} // closed when the process printed READY (replicas) or on start
	exited  chan struct{} // closed by the waiter once cmd.Wait returned
	mu      sync.Mutex
	ended   time.Time
	endHow  string // "killed", "drained", "exited: ..." (set by whoever ended it, or the waiter)
	samples []sample
	stopped bool // SIGSTOPped now
}

// sample is one /proc and /metrics reading of an instance.
type sample struct {
	At         time.Time
	RSSBytes   int64
	Goroutines int // -1 when the process has no metrics endpoint or it did not answer
}

// start launches a new instance; readyLine, when set, is the stdout line that marks it ready
// (otherwise it is ready once started). Output goes to logDir/<name>-<n>.log.
func (p *proc) start(readyLine string) (*instance, error) {
	p.mu.Lock()
	n := len(p.instances) + 1
	p.mu.Unlock()
	logf, err := os.Create(filepath.Join(p.logDir, fmt.Sprintf("%s-%d.log", p.name, n)))
	if err != nil {
		return nil, fmt.Errorf("chaos: %s log: %w", p.name, err)
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stderr = logf
	// Its own process group, so that a Ctrl-C of the harness reaches the harness only and the
	// harness decides how each child ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout io.ReadCloser
	if readyLine != "" {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("chaos: %s stdout: %w", p.name, err)
		}
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("chaos: start %s: %w", p.name, err)
	}
	in := &instance{proc: p, cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), ready: make(chan struct{}), exited: make(chan struct{})}
	var outDone chan struct{}
	if readyLine != "" {
		outDone = make(chan struct{})
		// Owned by the instance: ends at EOF of stdout, which the process's exit brings.
		go func() {
			defer close(outDone)
			once := sync.Once{}
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				fmt.Fprintln(logf, line)
				if strings.TrimSpace(line) == readyLine {
					once.Do(func() { close(in.ready) })
				}
			}
		}()
	} else {
		close(in.ready)
	}
	// The waiter: the only caller of cmd.Wait; ends when the process does.
	go func() {
		if outDone != nil {
			<-outDone
		}
		err := cmd.Wait()
		logf.Close()
		in.mu.Lock()
		in.ended = time.Now()
		if in.endHow == "" {
			in.endHow = "exited: " + exitText(err)
		}
		in.mu.Unlock()
		close(in.exited)
	}()
	p.mu.Lock()
	p.cur = in
	p.instances = append(p.instances, in)
	p.mu.Unlock()
	return in, nil
}

func exitText(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// current returns the instance running now (nil before the first start).
func (p *proc) current() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

func (p *proc) all() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*instance(nil), p.instances...)
}

// waitReady waits for READY (or the start), the process's exit or the timeout.
func (in *instance) waitReady(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-in.ready:
		return nil
	case <-in.exited:
		return fmt.Errorf("chaos: %s (pid %d) exited before it was ready: %s", in.proc.name, in.pid, in.how())
	case <-t.C:
		return fmt.Errorf("chaos: %s (pid %d) not ready after %s", in.proc.name, in.pid, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in *instance) how() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.endHow
}

func (in *instance) alive() bool {
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// signal sends sig, recording how the instance is meant to end (kill) or be held (stop/cont).
func (in *instance) signal(sig syscall.Signal, how string) error {
	in.mu.Lock()
	if how != "" {
		in.endHow = how
	}
	switch sig {
	case syscall.SIGSTOP:
		in.stopped = true
	case syscall.SIGCONT, syscall.SIGKILL:
		in.stopped = false
	}
	in.mu.Unlock()
	if err := in.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: signal %s to %s (pid %d): %w", sig, in.proc.name, in.pid, err)
	}
	return nil
}

// kill9 kills the instance and waits for its exit.
func (in *instance) kill9(how string) error {
	if err := in.signal(syscall.SIGKILL, how); err != nil {
		return err
	}
	<-in.exited
	return nil
}

// end stops an instance at the end of the run: SIGCONT (it may be stopped), SIGTERM, then
// SIGKILL after grace.
func (in *instance) end(grace time.Duration) {
	if !in.alive() {
		return
	}
	_ = in.signal(syscall.SIGCONT, "")
	_ = in.signal(syscall.SIGTERM, "ended by the harness")
	select {
	case <-in.exited:
	case <-time.After(grace):
		_ = in.kill9("killed by the harness after the grace")
	}
}

func (in *instance) addSample(s sample) {
	in.mu.Lock()
	in.samples = append(in.samples, s)
	in.mu.Unlock()
}

func (in *instance) isStopped() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stopped
}

// readRSS reads VmRSS of pid from /proc (bytes).
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("chaos: VmRSS %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("chaos: no VmRSS for pid %d", pid)
}
