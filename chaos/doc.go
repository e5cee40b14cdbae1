// Package chaos is the chaos and soak harness behind `fame chaos` and `make chaos`: it proves,
// with counts, that nothing is lost when replicas and the sentinel fail under load.
//
// Run starts real processes: in the default strict profile our fame oauth2, fame welcome and
// fame ca, a fame sentinel (strict-overlay, channel encryption, welcome admission, AFT
// stickiness at level strict, a bbolt store and a fixed FAME_NODE_ID, so a restart finds its
// bindings) and three math-agent replicas that keep an execution log (MATH_EXEC_LOG). The
// harness itself runs the load as client nodes of the Go SDK: at-least-once and at-most-once
// callers whose every call carries an idempotency key and is retried with it until answered,
// each a sticky session on one replica; streaming callers (fib_stream); and a slow-reading
// client behind a throttling relay. In the overlay profile, Config.TSClient adds one real
// TypeScript client (tsclient.go: ts/chaos-client.mjs on interop/'s pinned @naylence packages,
// Node 20) whose attempts are counted apart.
//
// Faults come one after another at seeded random intervals (plan: the same seed gives the
// same schedule): kill -9 of a replica and its restart, SIGSTOP of a replica for 1–10 s then
// SIGCONT, kill -9 of the sentinel and its restart on the same store, a replica drained
// (POST /admin/replicas/{id}/drain, or SIGTERM, which a math-agent turns into a drain) and
// restarted, and the slow client reading at ~5 KB/s.
//
// The accounting (report.go) is per attempt: answered, nacked, errored, or lost (no reply nor
// nack within LostAfter, 4 s, after the fault that hit it, or nothing before its deadline);
// duplicates are keys the replicas executed more than once, explained when the first
// execution's replica was killed or stopped, or the sentinel killed, right after it; sessions
// are followed from replica to replica through the execution log (moves off a replica no
// fault touched are failures; re-pin latency is fault → first answer from another replica).
// Every process instance is sampled for RSS (/proc) and goroutines (/metrics go_goroutines;
// a replica's from its goroutine profile, less the SDK's resident handler workers) every 2 s, right before the harness kills or drains it, and at the end; each is judged over
// its own lifetime (the median of the 10 s after its own warm-up against the median of its
// last three samples) when it was observed long enough past that warm-up (report.go).
//
// Goroutines: the callers (one per client node), the sampler, the slow relay's accept loop and
// two per relayed connection, one waiter per child process (plus its stdout reader), and the
// TS client's stdout reader and waiter: Run stops and waits for all of them before it returns.
package chaos
