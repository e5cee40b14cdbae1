package config

import "time"

// The sentinel's defaults: what a setting is when neither the file nor a FAME_* variable gives
// it. Each says why it is what it is; the FAME_* table in README.md is generated from these
// (see vars.go), so the documentation cannot drift from the code.
const (
	// DefaultHost and DefaultPort: every interface, on the reference sentinel's port, so a
	// reference node's default attach URL (ws://<host>:8000/fame/v1/...) finds it.
	DefaultHost = "0.0.0.0"
	DefaultPort = 8000

	// DefaultRootLogical is the logical the sentinel serves, the reference's fabric root.
	DefaultRootLogical = "fame.fabric"

	// Profiles: open security and no admission is the reference's out-of-the-box setup; a
	// deployment that wants more says so explicitly.
	DefaultSecurityProfile      = "open"
	DefaultAdmissionProfile     = "none"
	DefaultDeliveryProfile      = "at-most-once" // the reference's default; at-least-once is opt-in
	DefaultLoadBalancingProfile = "hrw"          // rendezvous hashing: stable replica choice without shared state
	DefaultStorageProfile       = "memory"       // bindings persist only when a path is given
	// DefaultStickinessLevel accepts AFT tokens signed or unsigned, as the reference's default
	// AFT stickiness manager does; strict-overlay deployments set strict.
	DefaultStickinessLevel = "signed-optional"

	// Stickiness: an AFT session lives an hour by default and at most two, the reference's
	// AFT defaults; 100,000 cached sessions bound the table to a few tens of MiB.
	DefaultStickyTTL      = time.Hour
	DefaultStickyMaxTTL   = 2 * time.Hour
	DefaultStickyCacheMax = 100_000

	// DefaultSendQueue envelopes per connection: deep enough to ride out a burst of a busy
	// pool, short enough that a stuck peer is noticed (the byte bound usually bites first).
	DefaultSendQueue = 4096
	// DefaultSendQueueBytes per connection: 32 largest (256 KiB) envelopes, 16 times the
	// minimum validate asks for (one sender may hold half a queue, and a largest envelope
	// must fit in that half).
	DefaultSendQueueBytes int64 = 8 << 20
	// DefaultWriteTimeout: a WebSocket write stuck this long means a dead or hostile peer;
	// 10 s outlasts any healthy TCP stall. It is also the slow-consumer timeout unless that
	// is set (it used to be the only knob).
	DefaultWriteTimeout = 10 * time.Second
	// DefaultAttachTimeout: a peer has this long after the upgrade to send NodeAttach, so an
	// idle socket cannot hold a connection slot.
	DefaultAttachTimeout = 10 * time.Second
	// DefaultPingInterval probes serving nodes every second; a peer that misses two pings is
	// dropped, so a dead replica leaves its pool within about 2 s.
	DefaultPingInterval = time.Second
	// DefaultIdleTimeout: peers heartbeat every 15 s; three missed heartbeats is dead.
	DefaultIdleTimeout = 45 * time.Second
	// DefaultDrainTimeout bounds a graceful drain (SIGTERM, POST /admin/drain): calls in flight
	// get this long for their replies; 30 s is within the usual orchestrator grace period
	// (Kubernetes' default terminationGracePeriodSeconds is 30).
	DefaultDrainTimeout = 30 * time.Second

	// DefaultRateMaxEntries bounds each table of rate-limit buckets (limits.rate.max_entries).
	DefaultRateMaxEntries = 65536

	// Per-connection bounds under hostile load: far above what an honest node uses (a
	// replica binds a handful of addresses and announces two keys), low enough that one
	// connection cannot grow the sentinel's tables without bound.
	DefaultMaxRoutes       = 256
	DefaultMaxCapabilities = 1024
	DefaultMaxKeys         = 64
	DefaultMaxPending      = 65536 // requests awaiting a reply per connection
	// DefaultMaxConnections bounds open WebSockets: at ~50 KiB each, about 5 GiB at the cap.
	DefaultMaxConnections = 100_000
	// DefaultAttachRate and DefaultAttachBurst per remote address: a reconnect storm of a
	// few thousand nodes behind one NAT gets through; a flood from one address does not.
	DefaultAttachRate  = 1000.0
	DefaultAttachBurst = 5000
	// DefaultGlobalQueueBytesNoLimit is the bound on bytes queued across all connections when
	// GOMEMLIMIT is not set; with it, a quarter of the limit (queued envelopes may take a share
	// of the memory, never all of it).
	DefaultGlobalQueueBytesNoLimit int64 = 1 << 30

	// MinAdminTokenLength: a shorter bearer token is guessable; refuse it rather than guard
	// the admin endpoints with it.
	MinAdminTokenLength = 16

	// MinSendQueue: the floor validate enforces, so that a slip (send_queue: 1) cannot make
	// the sentinel nack every small burst of ordinary traffic.
	MinSendQueue = 16

	// DefaultLogFormat and DefaultLogLevel: human-readable text at info.
	DefaultLogFormat = "text"
	DefaultLogLevel  = "info"
)
