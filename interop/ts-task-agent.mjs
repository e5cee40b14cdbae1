// ts-task-agent.mjs: the A2A task example of examples/tasks, written on the reference TS SDK's
// BackgroundTaskAgent: tasks@fame.fabric counts to n ({"n": N, "stepMs": MS}), reporting
// {"count": i, "of": n} as a working status each step, and completes with {"counted": n}.
// It advertises example.count.v1 besides the agent capability. Prints READY on stdout once serving; stops on SIGINT/SIGTERM.
const writeLine = (line) => process.stdout.write(`${line}\n`);
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

const { FameFabric } = await import('@naylence/runtime');
const { BackgroundTaskAgent, NODE_CONFIG, TaskState, makeMessage } = await import('@naylence/agent-sdk');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class CountAgent extends BackgroundTaskAgent {
  // Also found by capability (the Go client's -by-capability, which pins a task's later calls).
  get capabilities() {
    return [...super.capabilities, 'example.count.v1'];
  }

  async runBackgroundTask(params) {
    const data = params.message?.parts?.[0]?.data ?? {};
    const n = Number.isInteger(data.n) ? data.n : 5;
    const stepMs = Number.isInteger(data.stepMs) ? data.stepMs : 100;
    for (let i = 1; i <= n; i += 1) {
      await sleep(stepMs);
      // updateTaskState answers false once the task is terminal (canceled): stop then.
      if (!(await this.updateTaskState(params.id, TaskState.WORKING, makeMessage({ count: i, of: n })))) {
        return null;
      }
    }
    return { counted: n };
  }
}

const rootConfig = { ...NODE_CONFIG, node: { ...NODE_CONFIG.node, requested_logicals: ['fame.fabric'] } };
let fabric = null;
const stopped = new Promise((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
try {
  fabric = await FameFabric.getOrCreate({ rootConfig });
  await fabric.enter();
  const address = await fabric.serve(new CountAgent('tasks'), 'tasks@fame.fabric');
  console.error(`ts-task-agent: serving ${address}`);
  writeLine('READY');
  await stopped;
  const forced = setTimeout(() => process.exit(0), 3000);
  forced.unref();
  await fabric.exit();
  process.exit(0);
} catch (err) {
  console.error('ts-task-agent: fatal:', err?.stack ?? err);
  process.exit(1);
}
