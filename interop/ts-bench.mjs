// ts-bench.mjs: a closed-loop load client of math@fame.fabric built on the reference Naylence TS
// agent SDK, the reference side of the full-stack rows of `make bench-fullstack`
// (scripts/bench-fullstack.sh): CALLERS callers on one client node each call add({x:3,y:4}) back
// to back (the answer checked) for WARMUP_MS, then for DURATION_MS measured.
//
// It prints one JSON object on stdout (runtime logs go to stderr):
//   {"calls": N, "calls_per_sec": R, "p50_us": .., "p99_us": .., "errors": E, "wrong": W}
// and exits 0 when every measured call was answered right.
//
// Options (environment): CALLERS (32), DURATION_MS (10000), WARMUP_MS (2000), CALL_TIMEOUT_MS
// (5000), MATH_ADDRESS (math@fame.fabric), plus the runtime's FAME_DIRECT_ADMISSION_URL,
// FAME_SECURITY_PROFILE, FAME_ADMISSION_PROFILE, FAME_LOG_LEVEL.

console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`ts-bench: ${name} must be a positive integer, got "${raw}"`);
    process.exit(2);
  }
  return value;
}

const callers = intEnv('CALLERS', 32);
const durationMs = intEnv('DURATION_MS', 10000);
const warmupMs = intEnv('WARMUP_MS', 2000);
const callTimeoutMs = intEnv('CALL_TIMEOUT_MS', 5000);
const address = process.env.MATH_ADDRESS || 'math@fame.fabric';

const { withFabric } = await import('@naylence/runtime');
const { Agent, CLIENT_CONFIG } = await import('@naylence/agent-sdk');

const latenciesUs = [];
let errors = 0;
let wrong = 0;

function withTimeout(promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), callTimeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function caller(math, measureFrom, end) {
  while (true) {
    const start = process.hrtime.bigint();
    if (Number(start / 1000000n) >= end) return;
    const measured = Number(start / 1000000n) >= measureFrom;
    try {
      const sum = await withTimeout(math.add({ x: 3, y: 4 }));
      if (!measured) continue;
      if (sum !== 7) {
        wrong += 1;
        continue;
      }
      latenciesUs.push(Number(process.hrtime.bigint() - start) / 1000);
    } catch (err) {
      if (measured) errors += 1;
      if (errors === 1) console.error('ts-bench: call failed:', err?.message ?? err);
    }
  }
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function run() {
  const math = Agent.remoteByAddress(address);
  const now = Number(process.hrtime.bigint() / 1000000n);
  const measureFrom = now + warmupMs;
  const end = measureFrom + durationMs;
  await Promise.all(Array.from({ length: callers }, () => caller(math, measureFrom, end)));
}

let fatal = false;
try {
  await withFabric({ rootConfig: CLIENT_CONFIG }, run);
} catch (err) {
  fatal = true;
  console.error('ts-bench: fatal:', err?.stack ?? err);
}
latenciesUs.sort((a, b) => a - b);
const result = {
  calls: latenciesUs.length,
  calls_per_sec: Math.round((latenciesUs.length / durationMs) * 1000 * 10) / 10,
  p50_us: quantile(latenciesUs, 0.5),
  p99_us: quantile(latenciesUs, 0.99),
  errors,
  wrong,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(!fatal && errors === 0 && wrong === 0 && result.calls > 0 ? 0 : 1);
