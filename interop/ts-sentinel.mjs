// ts-sentinel.mjs: the reference Naylence TS sentinel (the runtime's own Sentinel.aserve) for the
// reverse interop direction: our Go agent and client attached to the real TS router.
//
// Environment:
//   FAME_LISTENER_PORT   HTTP + WebSocket port (default 8000)
//   FAME_LISTENER_HOST   bind address (default 127.0.0.1; the runtime's own default is 0.0.0.0)
//   FAME_SECURITY_PROFILE, FAME_ADMISSION_PROFILE, FAME_DELIVERY_PROFILE, FAME_NODE_ID,
//   FAME_FLOW_CONTROL, FAME_LOG_LEVEL, FAME_SHOW_ENVELOPES  as the runtime reads them
//
// stdout carries only "READY", printed once GET /fame/v1/attach/health answers 200; runtime logs go
// to stderr.

const writeLine = (line) => process.stdout.write(`${line}\n`);
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

const { Sentinel } = await import('@naylence/runtime');
const { SENTINEL_CONFIG } = await import('@naylence/agent-sdk');

const host = process.env.FAME_LISTENER_HOST || '127.0.0.1';
const port = Number(process.env.FAME_LISTENER_PORT || 8000);

const rootConfig = {
  ...SENTINEL_CONFIG,
  node: {
    ...SENTINEL_CONFIG.node,
    listeners: SENTINEL_CONFIG.node.listeners.map((listener) => ({ ...listener, host })),
  },
};

// Sentinel.aserve has no readiness hook, so poll our own health route.
async function announceWhenHealthy() {
  const probeHost = host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${probeHost}:${port}/fame/v1/attach/health`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) {
        writeLine('READY');
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.error(`ts-sentinel: ${url} never became healthy`);
  process.exit(1);
}

announceWhenHealthy();
try {
  await Sentinel.aserve({ rootConfig });
  process.exit(0);
} catch (err) {
  console.error('ts-sentinel: fatal:', err?.stack ?? err);
  process.exit(1);
}
