// ts-task-client.mjs: the reference TS agent SDK's proxy driving the A2A task methods of our
// Go task agent (examples/tasks, tasks@fame.fabric). Unmodified reference calls only:
// Agent.remoteByAddress / remoteByCapabilities, runTask, startTask, getTaskStatus,
// subscribeToTaskUpdates, cancelTask.
//
// It prints exactly these lines on stdout (runtime logs go to stderr) and exits 0 only if
// every one was right:
//   runTask = {"counted":3}
//   subscribe = working*N completed       (N >= 1: the status updates of a count to 3)
//   cancel = canceled
//   get = canceled
//   capability runTask = {"counted":2}
// plus FAME_DIRECT_ADMISSION_URL and the other FAME_* variables of the runtime.
const writeLine = (line) => process.stdout.write(`${line}\n`);
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

const { withFabric } = await import('@naylence/runtime');
const { Agent, CLIENT_CONFIG, makeTaskParams } = await import('@naylence/agent-sdk');

let failures = 0;
async function step(label, fn) {
  try {
    await fn();
  } catch (err) {
    failures += 1;
    console.error(`ts-task-client: ${label} failed:`, err?.stack ?? err);
  }
}
function check(label, got, want) {
  if (got === want) return true;
  failures += 1;
  console.error(`ts-task-client: ${label}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  return false;
}
const newId = () => `ts-${Date.now()}-${Math.random().toString(16).slice(2)}`;

async function run() {
  const tasks = Agent.remoteByAddress('tasks@fame.fabric');
  await step('runTask', async () => {
    const got = JSON.stringify(await tasks.runTask({ n: 3, stepMs: 20 }));
    if (check('runTask', got, '{"counted":3}')) writeLine(`runTask = ${got}`);
  });
  await step('subscribe', async () => {
    const id = newId();
    const states = [];
    const updates = await tasks.subscribeToTaskUpdates(makeTaskParams({ id, payload: { n: 3, stepMs: 20 } }));
    for await (const ev of updates) {
      if (ev && ev.status) states.push(ev.status.state);
    }
    const last = states[states.length - 1];
    const working = states.filter((s) => s === 'working').length;
    if (check('subscribe last state', last, 'completed') && working >= 1) {
      writeLine(`subscribe = working*N completed`);
    } else if (working < 1) {
      check('subscribe working updates', working, '>= 1');
    }
  });
  await step('cancel', async () => {
    const id = newId();
    const started = await tasks.startTask(makeTaskParams({ id, payload: { n: 1000, stepMs: 50 } }));
    check('started state', started.status.state, 'working');
    const canceled = await tasks.cancelTask({ id });
    if (check('cancel', canceled.status.state, 'canceled')) writeLine(`cancel = ${canceled.status.state}`);
    const got = await tasks.getTaskStatus({ id });
    if (check('get', got.status.state, 'canceled')) writeLine(`get = ${got.status.state}`);
  });
  await step('capability runTask', async () => {
    const byCap = Agent.remoteByCapabilities(['example.count.v1']);
    const got = JSON.stringify(await byCap.runTask({ n: 2, stepMs: 10 }));
    if (check('capability runTask', got, '{"counted":2}')) writeLine(`capability runTask = ${got}`);
  });
}

try {
  await withFabric({ rootConfig: CLIENT_CONFIG }, run);
} catch (err) {
  failures += 1;
  console.error('ts-task-client: fatal:', err?.stack ?? err);
}
process.exit(failures === 0 ? 0 : 1);
