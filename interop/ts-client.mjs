// ts-client.mjs: a client of math@fame.fabric built on the reference Naylence TS agent SDK.
//
// It prints exactly these lines on stdout (runtime logs go to stderr):
//   add(3, 4) = 7
//   multiply(6, 7) = 42
//   fib_stream(10) = 0 1 1 2 3 5 8 13 21 34
//   whoami = <name>          once per call when WHOAMI=N (N > 0)
//   concurrent N ok          when CONCURRENCY=N (N > 0): N add calls in flight at once, all right
// and exits 0 only if every result was right; every failure is described on stderr.
//
// Options (environment, or the equivalent flag):
//   WHOAMI=N            --whoami N
//   CONCURRENCY=N       --concurrency N
//   SLEEP_BEFORE_MS=MS  --sleep-before-ms MS   (idle time after attaching, before the first call)
//   REPEAT=R            --repeat R             (run the add/multiply/fib_stream/whoami round R times
//                                               in the same session; default 1)
//   REPEAT_GAP_MS=MS    --repeat-gap-ms MS     (pause between rounds, e.g. to kill a replica)
//   MATH_ADDRESS        target address (default math@fame.fabric)
// plus the runtime's FAME_DIRECT_ADMISSION_URL, FAME_SECURITY_PROFILE, FAME_ADMISSION_PROFILE,
// FAME_DELIVERY_PROFILE, FAME_NODE_ID(_SALT), FAME_FLOW_CONTROL, FAME_LOG_LEVEL.

const writeLine = (line) => process.stdout.write(`${line}\n`);
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

function intOption(flag, envName, fallback) {
  const argv = process.argv.slice(2);
  let raw = process.env[envName];
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === flag && i + 1 < argv.length) raw = argv[i + 1];
    else if (argv[i].startsWith(`${flag}=`)) raw = argv[i].slice(flag.length + 1);
  }
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`ts-client: ${envName}/${flag} must be a non-negative integer, got "${raw}"`);
    process.exit(2);
  }
  return value;
}

const whoamiCalls = intOption('--whoami', 'WHOAMI', 0);
const concurrency = intOption('--concurrency', 'CONCURRENCY', 0);
const sleepBeforeMs = intOption('--sleep-before-ms', 'SLEEP_BEFORE_MS', 0);
const rounds = Math.max(1, intOption('--repeat', 'REPEAT', 1));
const roundGapMs = intOption('--repeat-gap-ms', 'REPEAT_GAP_MS', 0);
const address = process.env.MATH_ADDRESS || 'math@fame.fabric';

const { withFabric } = await import('@naylence/runtime');
const { Agent, CLIENT_CONFIG } = await import('@naylence/agent-sdk');

const FIB10 = '0 1 1 2 3 5 8 13 21 34';
let failures = 0;

function check(label, got, want) {
  if (got === want) return true;
  failures += 1;
  console.error(`ts-client: ${label}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  return false;
}

// Each step runs on its own so one failure still lets the others report.
async function step(label, fn) {
  try {
    await fn();
  } catch (err) {
    failures += 1;
    console.error(`ts-client: ${label} failed:`, err?.stack ?? err);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function round(math) {
  await step('add', async () => {
    const sum = await math.add({ x: 3, y: 4 });
    if (check('add(3, 4)', sum, 7)) writeLine(`add(3, 4) = ${sum}`);
  });
  await step('multiply', async () => {
    const product = await math.multiply({ x: 6, y: 7 });
    if (check('multiply(6, 7)', product, 42)) writeLine(`multiply(6, 7) = ${product}`);
  });
  await step('fib_stream', async () => {
    const items = [];
    for await (const item of await math.fib_stream({ _stream: true, n: 10 })) {
      items.push(item);
    }
    const joined = items.join(' ');
    if (check('fib_stream(10)', joined, FIB10)) writeLine(`fib_stream(10) = ${joined}`);
  });
  for (let i = 0; i < whoamiCalls; i += 1) {
    await step(`whoami #${i + 1}`, async () => {
      const name = await math.whoami();
      if (typeof name !== 'string' || name === '') {
        check(`whoami #${i + 1}`, name, '<non-empty string>');
        return;
      }
      writeLine(`whoami = ${name}`);
    });
  }
}

async function run() {
  const math = Agent.remoteByAddress(address);
  if (sleepBeforeMs > 0) await sleep(sleepBeforeMs);
  for (let r = 0; r < rounds; r += 1) {
    if (r > 0 && roundGapMs > 0) await sleep(roundGapMs);
    await round(math);
  }
  if (concurrency > 0) {
    const before = failures;
    await step(`concurrent ${concurrency}`, async () => {
      const calls = [];
      for (let i = 0; i < concurrency; i += 1) {
        calls.push(
          math.add({ x: i, y: 2 * i }).then(
            (got) => check(`concurrent add(${i}, ${2 * i})`, got, 3 * i),
            (err) => {
              failures += 1;
              console.error(`ts-client: concurrent add #${i} failed:`, err?.message ?? err);
            },
          ),
        );
      }
      await Promise.all(calls);
    });
    if (failures === before) writeLine(`concurrent ${concurrency} ok`);
  }
}

try {
  await withFabric({ rootConfig: CLIENT_CONFIG }, run);
} catch (err) {
  failures += 1;
  console.error('ts-client: fatal:', err?.stack ?? err);
}
process.exit(failures === 0 ? 0 : 1);
