// Package agent is the A2A task layer of the Go SDK, over package node: the methods and
// payload shapes the reference agent SDKs (TS and Python) put on the wire, so a reference
// client can drive a Go agent and a Go proxy can drive a reference agent.
//
// Wire methods (JSON-RPC over FAME Data envelopes): tasks/send (start a task; answers the
// Task), tasks/get (its status), tasks/cancel, tasks/sendSubscribe (a stream of
// TaskStatusUpdateEvent / TaskArtifactUpdateEvent ending with "result": null),
// tasks/sendUnsubscribe and agent.get_card. tasks/pushNotification/{set,get} answer -32003
// as the reference's base agent does; tasks/resubscribe is method-not-found there as in the
// reference's RPC adapter. Errors carry the reference's codes (errors.go); an unknown or
// expired task is -32001 (the reference's background agent answers a generic -32603).
//
// One deliberate superset: tasks/sendSubscribe for an id the agent does not know starts the
// task (A2A's "send and subscribe"); the reference only subscribes, so its proxy and ours
// call tasks/send first and work with both.
//
// Pieces:
//   - Agent is what Serve exposes; TaskAgent implements it over a RunFunc. Synchronous
//     (Background false): tasks/send runs the task to completion and answers the final Task;
//     Background: tasks/send answers "working" at once and the work outlives the request,
//     owned by the agent until it ends or the agent is closed.
//   - The task store is bounded: at most MaxTasks entries, finished ones forgotten after
//     TTL or, oldest first, when room is needed; when every entry is a running task the next
//     task is refused (-32029) rather than growing without bound.
//   - Cancellation goes through the task's context: tasks/cancel (and Close) cancel it, the
//     state becomes "canceled" at once, and whatever RunFunc returns afterwards is ignored.
//   - Subscribers get their own bounded event queue; one that falls behind is dropped (its
//     stream ends with an error) instead of slowing the task or other subscribers. At most
//     MaxSubscribers streams per task (-32029 past it): each holds a handler of the serving
//     node until the task ends, so they must not be unbounded.
//   - Proxy calls an agent by address or by capabilities (node.CallCapabilities).
//   - Handle and HandleStream build typed node.Ops with generics beside node's raw form.
package agent
