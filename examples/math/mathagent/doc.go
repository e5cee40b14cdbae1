// Package mathagent is the math example's agent as a library: the operations add, multiply,
// fib_stream and whoami, so that the math-agent binary, tests and other programs can embed the
// same agent. Serve it with (*node.Node).Serve(ctx, Address, mathagent.Ops(name)).
package mathagent
