// Package agent is the A2A task layer of the Go SDK, over package node: the methods and
// payload shapes the reference agent SDKs (TS and Python) put on the wire, so a reference
// client can drive a Go agent and a Go proxy can drive a reference agent.
//
// Wire methods (JSON-RPC over FAME Data envelopes): tasks/send (start a task; answers the
// Task), tasks/get (its status), tasks/cancel, tasks/sendSubscribe (a stream of
// TaskStatusUpdateEvent / TaskArtifactUpdateEvent ending with "result": null),
// tasks/sendUnsubscribe and agent.get_card. tasks/pushNotification/{set,get} answer -32003
// "Push Notification is not supported", as the reference's base agents (TS and Python) do.
// tasks/resubscribe (params TaskIdParams, as the reference's a2a types define it): TaskAgent
// streams the updates of a task it already has and never starts one (-32001 for an unknown
// id); an Agent that is not a Resubscriber answers -32601 "Method not found", which is what
// the reference's RPC adapters answer (they list the method but have no case for it). Errors
// carry the reference's codes (errors.go); an unknown or expired task is -32001 (the
// reference's background agent answers a generic -32603).
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
//   - Proxy calls an agent by address or by capabilities (node.CallCapabilities); a
//     by-capability proxy pins each task's later calls to the agent that took it (the
//     reference's proxies do not; see Proxy).
//   - Handle and HandleStream build typed node.Ops with generics beside node's raw form.
package agent
