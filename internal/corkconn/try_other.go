//go:build !unix

package corkconn

import (
	"net"
	"syscall"
)

// rawOf: no non-blocking write outside unix; TryUncork then writes nothing and senders queue.
func rawOf(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, nil }
