//go:build interop

package interop

import (
	"bytes"
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
	"testing"
	"time"
)

// Limits on what the harness keeps in memory per stream; a sentinel with FAME_SHOW_ENVELOPES can
// print a lot, and only the tail matters when a failure is reported.
const (
	tailBytes    = 64 << 10
	maxLines     = 100_000
	termGrace    = 5 * time.Second
	killGrace    = 5 * time.Second
	processDelay = 2 * time.Second // exec.Cmd.WaitDelay: don't hang on inherited pipes
)

// tailBuffer keeps the last tailBytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - tailBytes; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lineLog splits a stream into lines and lets callers wait for a line that matches.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced whenever a line is appended
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, strings.TrimRight(string(l.partial[:i]), "\r"))
		l.partial = l.partial[i+1:]
		added = true
	}
	if over := len(l.lines) - maxLines; over > 0 {
		l.lines = append(l.lines[:0], l.lines[over:]...)
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// snapshot returns the complete lines so far and a channel closed on the next new line.
func (l *lineLog) snapshot() ([]string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...), l.changed
}

// proc is one child process of a case, started in its own process group.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdout  *lineLog
	stderr  *lineLog
	outTail *tailBuffer
	errTail *tailBuffer
	files   []*os.File // record files, closed after the process is reaped
	done    chan struct{}
	waitErr error
	started time.Time
	ended   time.Time
}

// startProc starts argv with env (on top of the filtered parent environment) and registers
// cleanup that kills the process group and checks that nothing of it is left.
func startProc(t *testing.T, c *caseEnv, name string, dir string, argv []string, env []string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	// Own process group so cleanup can kill everything the child spawns; Pdeathsig so the child
	// does not outlive a harness that dies without running cleanups (go test -timeout panics).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = processDelay
	p := &proc{
		name:    name,
		cmd:     cmd,
		stdout:  newLineLog(),
		stderr:  newLineLog(),
		outTail: &tailBuffer{},
		errTail: &tailBuffer{},
		done:    make(chan struct{}),
	}
	outW := []io.Writer{p.stdout, p.outTail}
	errW := []io.Writer{p.stderr, p.errTail}
	if c.recordDir != "" {
		if f, err := os.Create(filepath.Join(c.recordDir, name+".stdout")); err == nil {
			p.files = append(p.files, f)
			outW = append(outW, f)
		} else {
			t.Logf("record %s stdout: %v", name, err)
		}
		if f, err := os.Create(filepath.Join(c.recordDir, name+".stderr")); err == nil {
			p.files = append(p.files, f)
			errW = append(errW, f)
		} else {
			t.Logf("record %s stderr: %v", name, err)
		}
		if f, err := os.Create(filepath.Join(c.recordDir, name+".cmd")); err == nil {
			fmt.Fprintf(f, "cd %s\n%s %s\n", dir, strings.Join(env, " "), strings.Join(argv, " "))
			f.Close()
		}
	}
	cmd.Stdout = io.MultiWriter(outW...)
	cmd.Stderr = io.MultiWriter(errW...)
	if err := cmd.Start(); err != nil {
		p.closeFiles()
		t.Fatalf("start %s (%s): %v", name, strings.Join(argv, " "), err)
	}
	p.started = time.Now()
	go func() {
		// Owner: this goroutine reaps the child; it ends when the process (and its pipes) do.
		p.waitErr = cmd.Wait()
		p.ended = time.Now()
		p.closeFiles()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	t.Cleanup(func() { p.stopAndCheck(t) })
	return p
}

func (p *proc) closeFiles() {
	for _, f := range p.files {
		f.Close()
	}
}

func (p *proc) pgid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the process's exit status, or -1 while it runs or when a signal ended it.
func (p *proc) exitCode() int {
	if !p.exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// signal sends sig to the whole process group.
func (p *proc) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.pgid(), sig)
}

// kill ends the process group: SIGTERM, then SIGKILL after termGrace; it returns once reaped.
func (p *proc) kill() error {
	if !p.exited() {
		p.signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(termGrace):
		}
	}
	// Members other than the leader may survive it; SIGKILL the group in every case.
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(killGrace):
		return fmt.Errorf("%s (pid %d) not reaped %v after SIGKILL", p.name, p.pgid(), killGrace)
	}
	return nil
}

// stopAndCheck is the per-process cleanup: kill, then verify that the group is gone.
func (p *proc) stopAndCheck(t *testing.T) {
	if err := p.kill(); err != nil {
		t.Error(err)
	}
	deadline := time.Now().Add(killGrace)
	for {
		err := syscall.Kill(-p.pgid(), 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: process group %d still has members after kill (kill -0: %v)", p.name, p.pgid(), err)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) dump(t *testing.T) {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited (%v) after %v", p.waitErr, p.ended.Sub(p.started).Round(time.Millisecond))
	}
	t.Logf("==== %s: %s\n---- stdout (tail) ----\n%s\n---- stderr (tail) ----\n%s\n==== end %s",
		p.name, state, p.outTail.String(), p.errTail.String(), p.name)
}

// waitLine waits until a stdout line satisfies match, the process exits, or timeout passes.
func (p *proc) waitLine(timeout time.Duration, what string, match func(string) bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := 0
	for {
		lines, changed := p.stdout.snapshot()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen], nil
			}
		}
		select {
		case <-changed:
		case <-p.done:
			lines, _ := p.stdout.snapshot()
			for _, l := range lines[seen:] {
				if match(l) {
					return l, nil
				}
			}
			return "", fmt.Errorf("%s exited (%v) before printing %s", p.name, p.waitErr, what)
		case <-ctx.Done():
			return "", fmt.Errorf("%s did not print %s within %v", p.name, what, timeout)
		}
	}
}

// waitExit waits for the process to end on its own within timeout and returns its exit code.
func (p *proc) waitExit(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.exitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s still running after %v", p.name, timeout)
	}
}

// lines returns the complete stdout lines printed so far.
func (p *proc) lines() []string {
	l, _ := p.stdout.snapshot()
	return l
}

// errLines returns the complete stderr lines printed so far.
func (p *proc) errLines() []string {
	l, _ := p.stderr.snapshot()
	return l
}
