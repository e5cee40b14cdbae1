// ts-agent.mjs: a math agent built on the reference Naylence TS agent SDK.
//
// The fame-go interop suite runs it as the "real TS agent" that our Go sentinel must route to,
// so it only uses the SDK's public surface, the way an application would.
//
// Operations: add({x,y}), multiply({x,y}), fib_stream({n}) (streaming: 0 1 1 2 ...),
// whoami() -> $AGENT_NAME, or the node's system id when AGENT_NAME is unset.
//
// Environment (all FAME_* variables are read by the runtime itself through the SDK's NODE_CONFIG):
//   FAME_DIRECT_ADMISSION_URL  ws://HOST:PORT/fame/v1/attach/ws/downstream (the runtime appends /<systemId>)
//   FAME_NODE_ID, FAME_NODE_ID_SALT   fixed id, or salt for the fingerprint id (replicas need distinct ones)
//   FAME_SECURITY_PROFILE, FAME_ADMISSION_PROFILE, FAME_DELIVERY_PROFILE, FAME_FLOW_CONTROL, FAME_LOG_LEVEL
//   MATH_LOGICAL   "fame.fabric" (default: binds math@fame.fabric exactly) or "*.fame.fabric" (pool replica)
//   AGENT_NAME     the name whoami returns
//
// stdout carries only "READY" (once the address bind is acknowledged); the runtime's log lines are
// moved to stderr so the harness can read stdout without filtering.

const writeLine = (line) => process.stdout.write(`${line}\n`);
// The runtime logs through console.log; keep stdout for the harness protocol.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

const { FameFabric, operation } = await import('@naylence/runtime');
const { BaseAgent, NODE_CONFIG } = await import('@naylence/agent-sdk');

const logical = process.env.MATH_LOGICAL || 'fame.fabric';
if (logical !== 'fame.fabric' && logical !== '*.fame.fabric') {
  console.error(`ts-agent: MATH_LOGICAL must be "fame.fabric" or "*.fame.fabric", got "${logical}"`);
  process.exit(2);
}

let fabric = null;

class MathAgent extends BaseAgent {
  async add({ x, y }) {
    return x + y;
  }

  async multiply({ x, y }) {
    return x * y;
  }

  async *fibStream({ n }) {
    let [a, b] = [0, 1];
    for (let i = 0; i < n; i += 1) {
      yield a;
      [a, b] = [b, a + b];
    }
  }

  async whoami() {
    if (process.env.AGENT_NAME) {
      return process.env.AGENT_NAME;
    }
    return fabric?.node?.id ?? 'unknown';
  }
}

// .mjs has no decorator syntax; operation() is a legacy (target, key, descriptor) decorator.
const describe = (key) => Object.getOwnPropertyDescriptor(MathAgent.prototype, key);
operation({ name: 'add' })(MathAgent.prototype, 'add', describe('add'));
operation({ name: 'multiply' })(MathAgent.prototype, 'multiply', describe('multiply'));
operation({ name: 'fib_stream', streaming: true })(MathAgent.prototype, 'fibStream', describe('fibStream'));
operation({ name: 'whoami' })(MathAgent.prototype, 'whoami', describe('whoami'));

const rootConfig = {
  ...NODE_CONFIG,
  node: { ...NODE_CONFIG.node, requested_logicals: [logical] },
};

let stopping = false;
const stopped = new Promise((resolve) => {
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    console.error(`ts-agent: ${sig}, shutting down`);
    resolve();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
});

try {
  fabric = await FameFabric.getOrCreate({ rootConfig });
  await fabric.enter();
  const agent = new MathAgent('math');
  const address = await fabric.serve(agent, 'math@fame.fabric');
  console.error(`ts-agent: serving ${address} as ${fabric.node.id} (logical ${logical})`);
  writeLine('READY');
  await stopped;
  // exit() may hang on a dead sentinel; the process must still go away.
  const forced = setTimeout(() => process.exit(0), 3000);
  forced.unref();
  await fabric.exit();
  process.exit(0);
} catch (err) {
  console.error('ts-agent: fatal:', err?.stack ?? err);
  process.exit(1);
}
