//go:build unix

package corkconn

import (
	"errors"
	"net"
	"syscall"
)

// rawOf returns the socket under c for TryUncork, or nil (c is not a socket: a pipe in tests).
func rawOf(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// tryWrite makes one write(2) on the socket, which the Go runtime keeps non-blocking: a full
// send buffer returns EAGAIN at once (0 bytes written) instead of parking the caller.
func tryWrite(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				break
			}
		}
		return true // never wait for writability: the caller hands the rest to a writer
	})
	if err != nil {
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	if werr != nil {
		if errors.Is(werr, syscall.EAGAIN) {
			return n, nil
		}
		return n, &net.OpError{Op: "write", Net: "tcp", Err: werr}
	}
	return n, nil
}
