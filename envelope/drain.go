package envelope

// Replica drain (fame-go extension, carried in fields the FAME protocol already has).
//
// A replica asks its sentinel to drain it with a NodeHeartbeat whose payload is
// {"drain":{"request":true}} (and systemId = its own system id); the sentinel answers every
// heartbeat of a draining replica with a NodeHeartbeatAck whose payload is
// {"drain":{"state":"draining"|"drained", ...}}. NodeHeartbeat.payload and
// NodeHeartbeatAck.payload are optional `any` fields of the reference schema that its
// sentinel and nodes neither read nor forward: an unmodified Naylence sentinel acknowledges
// the drain heartbeat as a plain heartbeat (and the Go node then knows the drain is not
// supported), and an unmodified Naylence node ignores the status in its acks. Heartbeats are
// hop-local, so a drain request always concerns the connection it arrives on.

// DrainPayload is the payload of a drain heartbeat and of the acks that report a drain.
type DrainPayload struct {
	Drain *DrainStatus `json:"drain,omitempty"`
}

// Drain states reported in DrainStatus.State.
const (
	DrainStateDraining = "draining" // sessions are still being moved, or calls are in flight
	DrainStateDrained  = "drained"  // nothing is pinned to the replica and nothing is in flight
)

// DrainStatus is a drain request (Request, from the replica) or the sentinel's report of one.
type DrainStatus struct {
	Request        bool     `json:"request,omitempty"`
	State          string   `json:"state,omitempty"`
	By             string   `json:"by,omitempty"`     // "self" (the replica asked) or "admin"
	Result         string   `json:"result,omitempty"` // once drained: "idle" or "timeout"
	PinnedSessions int      `json:"pinnedSessions"`
	InFlight       int      `json:"inFlight"`
	Moved          int      `json:"moved"`
	LastOfPools    []string `json:"lastOfPools,omitempty"` // pools this replica leaves empty
}
