package connengine

import "time"

// The constants of the connector, shared by both ends.
const (
	// CreditWindow is the credit a flow starts with and the window a CreditUpdate grants
	// (the reference connector's).
	CreditWindow = 32
	// CreditLowWater: a receiver grants a fresh window once a flow's remaining credit is down
	// to this, that is after CreditWindow-CreditLowWater (24) envelopes, before the sender
	// runs dry.
	CreditLowWater = 8
	// MaxFlows bounds the flows a Stamper or RecvCredits remembers per connection.
	MaxFlows = 8192
	// MaxBatch and MaxBatchBytes bound one corked flush: a peer that cannot take
	// MaxBatchBytes within the slow-consumer timeout is reading (next to) nothing.
	MaxBatch      = 128
	MaxBatchBytes = 1 << 20
	// WriterLinger is how long a writer goroutine waits for more after draining its queue.
	// A peer in steady traffic keeps its writer; an idle node (a heartbeat every 15 s) has
	// one for 1/60 of the time.
	WriterLinger = 250 * time.Millisecond
	// DefaultDirectGap is the quiet spell after which a sender writes an envelope directly
	// (Config.DirectGap): longer than the gap between envelopes of a loaded connection
	// (tens of µs), shorter than one sequential call (a few hundred µs).
	DefaultDirectGap = 100 * time.Microsecond
)
