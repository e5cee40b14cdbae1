// Package loopport hands out loopback TCP ports for processes a harness starts itself (the
// chaos stack, the e2e cluster tests) and binds later, after the port was chosen.
//
// A port taken from 127.0.0.1:0 is an ephemeral one: between the harness closing its probe
// listener and the process binding the port, the kernel may give that port to any outgoing
// connection on the machine, and the process then fails with "address already in use" (seen
// once in the cluster tests). Ports below the kernel's ephemeral range are never given out
// that way, so only another harness choosing the same port can take one; a process never
// gets the same port twice from this package.
package loopport
