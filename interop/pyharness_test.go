//go:build interop

package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ---- the reference Python packages (interop/py/.venv) ----

var (
	pyOnce sync.Once
	pyPath string
	pyErr  error
)

// needPython makes sure interop/py/.venv holds the pinned reference Python packages (venv.sh
// installs them with --require-hashes, once per requirements hash) and returns its python.
func needPython(t *testing.T) string {
	t.Helper()
	pyOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(interopDir, "py", "venv.sh"))
		cmd.Env = baseEnv()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			pyErr = fmt.Errorf("interop/py/venv.sh: %w\n%s", err, stderr.String())
			return
		}
		pyPath = strings.TrimSpace(string(out))
		if _, err := os.Stat(pyPath); err != nil {
			pyErr = fmt.Errorf("interop/py/venv.sh printed %q: %w", pyPath, err)
		}
	})
	if pyErr != nil {
		t.Fatal(pyErr)
	}
	return pyPath
}

func (c *caseEnv) pyArgv(script string) []string {
	return []string{needPython(c.t), filepath.Join(interopDir, "py", script)}
}

// pyAgent starts our Python math agent (reference Python SDK) named name, attached to the
// sentinel on port (its attach URL is ignored under welcome admission, where the grant names it).
func (c *caseEnv) pyAgent(name string, port int, env ...string) *proc {
	c.t.Helper()
	env = append([]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name), "AGENT_NAME=" + name}, env...)
	p := startProc(c.t, c, name, filepath.Join(interopDir, "py"), c.pyArgv("math_agent.py"), env)
	c.waitReady(p)
	return p
}

// startPyClient starts our Python client without waiting for it.
func (c *caseEnv) startPyClient(name string, port int, env ...string) *proc {
	c.t.Helper()
	env = append([]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name)}, env...)
	return startProc(c.t, c, name, filepath.Join(interopDir, "py"), c.pyArgv("client.py"), env)
}

// pyClient runs our Python client to completion and requires exit code 0.
func (c *caseEnv) pyClient(name string, port int, env ...string) *proc {
	c.t.Helper()
	p := c.startPyClient(name, port, env...)
	c.requireExit0(p, clientTimeout)
	return p
}

// startPyProbe starts the failover probe (a whoami every PROBE_INTERVAL_MS) without waiting.
func (c *caseEnv) startPyProbe(name string, port int, env ...string) *proc {
	c.t.Helper()
	env = append([]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name)}, env...)
	return startProc(c.t, c, name, filepath.Join(interopDir, "py"), c.pyArgv("probe.py"), env)
}

// pySentinelOn starts the reference Python sentinel on port and waits for its READY line.
func (c *caseEnv) pySentinelOn(port int, env ...string) *proc {
	c.t.Helper()
	env = append([]string{"FAME_LISTENER_HOST=127.0.0.1", fmt.Sprintf("FAME_LISTENER_PORT=%d", port)}, env...)
	p := startProc(c.t, c, "py-sentinel", filepath.Join(interopDir, "py"), c.pyArgv("sentinel.py"), env)
	c.waitReady(p)
	return p
}

// pySentinel starts the reference Python sentinel on a free port.
func (c *caseEnv) pySentinel(env ...string) int {
	c.t.Helper()
	port := freePort(c.t)
	c.pySentinelOn(port, env...)
	return port
}
