//go:build interop

package interop

import (
	"strings"
	"testing"
)

var (
	taskAgentBin  = &goBinary{name: "task-agent", pkgs: []string{"./examples/tasks/task-agent"}}
	taskClientBin = &goBinary{name: "task-client", pkgs: []string{"./examples/tasks/task-client"}}
)

// TestInteropAgentTasks: the reference TS agent SDK's proxy (unmodified: runTask, startTask,
// subscribeToTaskUpdates, cancelTask, getTaskStatus, remoteByCapabilities) drives the A2A
// task methods of our Go task agent through our sentinel.
func TestInteropAgentTasks(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel()
	agent := taskAgentBin.need(t)
	p := startProc(t, c, "go-task-agent", repoRoot, []string{agent},
		[]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt("go-task-agent")})
	c.waitReady(p)
	needNode(t)
	cl := startProc(t, c, "ts-task-client", interopDir, node("ts-task-client.mjs"),
		[]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt("ts-task-client")})
	c.requireExit0(cl, clientTimeout)
	for _, want := range []string{`runTask = {"counted":3}`, "subscribe = working*N completed", "cancel = canceled",
		"get = canceled", `capability runTask = {"counted":2}`} {
		requireLine(t, cl, want)
	}
}

// TestInteropAgentTasksGoProxyTSAgent: our Go proxy (examples/tasks/task-client: tasks/send,
// tasks/sendSubscribe, tasks/cancel, tasks/get) drives a reference TS BackgroundTaskAgent
// through our sentinel: a count followed to completion, and a long count canceled mid-way.
func TestInteropAgentTasksGoProxyTSAgent(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel()
	needNode(t)
	a := startProc(t, c, "ts-task-agent", interopDir, node("ts-task-agent.mjs"),
		[]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt("ts-task-agent")})
	c.waitReady(a)
	client := taskClientBin.need(t)
	// By capability too: the Go proxy pins the task's tasks/sendSubscribe, tasks/cancel and
	// tasks/get to the TS agent that answered tasks/send (node.CallAt: agent@<its path>).
	for _, args := range [][]string{{"subscribe"}, {"cancel"}, {"-by-capability", "subscribe"}, {"-by-capability", "cancel"}} {
		mode := args[len(args)-1]
		name := "go-task-client-" + strings.Join(args, "")
		cl := startProc(t, c, name, repoRoot, append([]string{client}, args...),
			[]string{"FAME_DIRECT_ADMISSION_URL=" + attachURL(port), c.uniqueSalt(name)})
		c.requireExit0(cl, clientTimeout)
		want := map[string]string{"subscribe": "tasks/get -> completed", "cancel": "tasks/get -> canceled"}[mode]
		requireLine(t, cl, want)
	}
}
