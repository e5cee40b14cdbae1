// chaos-client.mjs: the chaos harness's real TypeScript client (package chaos, `fame chaos
// -ts-client`), on the reference Naylence TS packages that interop/ pins (@naylence/runtime,
// @naylence/agent-sdk). It calls add on math@fame.fabric in a loop, each logical call with its
// own idempotency key ("ts-000001", ...) and attempt number in its params, as the Go callers
// do, retrying an attempt that failed with the same key 100 ms later, 50 ms between keys.
//
// It prints one JSON line per attempt on stdout, for the harness's accounting:
//   {"key":"ts-000001","try":1,"start_ms":<unix ms>,"end_ms":<unix ms>,"outcome":"answered"}
// outcome: answered (the right sum), wrong (another value), error (the SDK threw: err says
// what) or timeout (nothing within ATTEMPT_TIMEOUT_MS). "READY" is printed once attached.
// It stops when its stdin closes: the call in progress still gets its retries for up to 20 s.
// Runtime logs go to stderr.

const out = (obj) => process.stdout.write(`${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n`);
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

const attemptTimeoutMs = Number(process.env.ATTEMPT_TIMEOUT_MS || 15000);
const address = process.env.MATH_ADDRESS || 'math@fame.fabric';

let stopping = false;
let drainBy = Infinity;
process.stdin.on('end', () => {
  stopping = true;
  drainBy = Date.now() + 20000;
});
process.stdin.on('close', () => {
  stopping = true;
  drainBy = Math.min(drainBy, Date.now() + 20000);
});
process.stdin.resume();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const { withFabric } = await import('@naylence/runtime');
const { Agent, CLIENT_CONFIG } = await import('@naylence/agent-sdk');

async function attempt(math, key, seq, tryNo) {
  const start = Date.now();
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ timeout: true }), attemptTimeoutMs);
  });
  let rec;
  try {
    const got = await Promise.race([
      math.add({ x: seq, y: tryNo, idempotency_key: key, attempt: tryNo }).then((v) => ({ v })),
      timeout,
    ]);
    if (got.timeout) {
      rec = { outcome: 'timeout' };
    } else if (got.v === seq + tryNo) {
      rec = { outcome: 'answered' };
    } else {
      rec = { outcome: 'wrong', err: `add(${seq}, ${tryNo}) = ${JSON.stringify(got.v)}` };
    }
  } catch (err) {
    rec = { outcome: 'error', err: String(err?.message ?? err).slice(0, 300) };
  } finally {
    clearTimeout(timer);
  }
  out({ key, try: tryNo, start_ms: start, end_ms: Date.now(), ...rec });
  return rec.outcome === 'answered';
}

async function run() {
  const math = Agent.remoteByAddress(address);
  out('READY');
  for (let seq = 1; !stopping; seq += 1) {
    const key = `ts-${String(seq).padStart(6, '0')}`;
    for (let tryNo = 1; ; tryNo += 1) {
      if (await attempt(math, key, seq, tryNo)) break;
      if (stopping && Date.now() > drainBy) return;
      await sleep(100);
    }
    await sleep(50);
  }
}

try {
  await withFabric({ rootConfig: CLIENT_CONFIG }, run);
} catch (err) {
  console.error('chaos-client: fatal:', err?.stack ?? err);
  process.exit(1);
}
process.exit(0);
