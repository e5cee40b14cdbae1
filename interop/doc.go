// Package interop is the cross-implementation test suite: it runs the reference Naylence
// TypeScript peers (ts-agent.mjs, ts-client.mjs, ts-sentinel.mjs on the pinned npm packages in
// package-lock.json) against fame-go's own binaries (cmd/fame, examples/math/agent,
// examples/math/client) and checks that they talk to each other in both directions.
//
// The suite is behind the build tag "interop" because it needs Node 20, npm and a few minutes:
//
//	go test -tags interop ./interop/ -v [-record DIR]
//
// The harness installs the Node packages itself (npm ci) when node_modules is missing, builds the
// Go binaries into a temporary directory, starts every process in its own process group and
// kills the groups when a case ends, pass or fail. With -record DIR (or INTEROP_RECORD=DIR) each
// process's stdout and stderr are kept under DIR/<case>/.
//
// This file exists so the package has a non-test file; all of the suite lives in *_test.go.
package interop
