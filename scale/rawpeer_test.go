//go:build scale

package scale

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// rawPeer is an idle node as cheap as a test can make it: a bare TCP socket speaking just enough
// WebSocket (RFC 6455) to attach and heartbeat, with no buffers and no goroutine of its own, so
// that 100,000 of them fit in the test process beside the sentinel they load.
type rawPeer struct {
	c   net.Conn
	id  string
	hdr [14]byte // frame header scratch (reads and writes happen on one goroutine at a time)
}

// dialRaw opens a WebSocket to ws://addr+path from the local address src (a loopback alias, so
// that the ephemeral port range of one source address does not cap the connection count).
func dialRaw(ctx context.Context, src net.IP, addr, path string) (*rawPeer, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, src, err)
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake write: %w", err)
	}
	// The server sends nothing after its 101 until we speak, so reading up to the blank line
	// cannot swallow a frame.
	var resp []byte
	buf := make([]byte, 512)
	for !bytes.Contains(resp, []byte("\r\n\r\n")) {
		n, err := c.Read(buf)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("handshake read: %w (got %q)", err, resp)
		}
		resp = append(resp, buf[:n]...)
		if len(resp) > 8192 {
			c.Close()
			return nil, errors.New("handshake: response headers too long")
		}
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
		c.Close()
		return nil, fmt.Errorf("handshake refused: %q", resp)
	}
	_ = c.SetDeadline(time.Time{})
	return &rawPeer{c: c}, nil
}

// write sends one masked frame (clients must mask; a constant key is as valid as a random one).
func (p *rawPeer) write(op byte, payload []byte) error {
	h := p.hdr[:0]
	h = append(h, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		h = append(h, 0x80|byte(n))
	case n < 1<<16:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	h = append(h, mask[:]...)
	frame := make([]byte, 0, len(h)+len(payload))
	frame = append(frame, h...)
	for i, b := range payload {
		frame = append(frame, b^mask[i&3])
	}
	_, err := p.c.Write(frame)
	return err
}

// read returns the next frame (the server does not fragment the small messages read here).
func (p *rawPeer) read() (op byte, payload []byte, err error) {
	if _, err := io.ReadFull(p.c, p.hdr[:2]); err != nil {
		return 0, nil, err
	}
	op = p.hdr[0] & 0x0f
	n := uint64(p.hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(p.c, p.hdr[:2]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(p.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(p.c, p.hdr[:8]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(p.hdr[:8])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(p.c, payload); err != nil {
		return 0, nil, err
	}
	return op, payload, nil
}

// exchange sends msg and waits up to timeout for a data message containing want, answering
// pings and skipping other messages (CreditUpdates) on the way.
func (p *rawPeer) exchange(msg []byte, want string, timeout time.Duration) ([]byte, error) {
	_ = p.c.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = p.c.SetDeadline(time.Time{}) }()
	if err := p.write(0x2, msg); err != nil {
		return nil, fmt.Errorf("%s: write: %w", p.id, err)
	}
	for {
		op, b, err := p.read()
		if err != nil {
			return nil, fmt.Errorf("%s: waiting for %s: %w", p.id, want, err)
		}
		switch op {
		case 0x8:
			return nil, fmt.Errorf("%s: closed by the server while waiting for %s: %q", p.id, want, b)
		case 0x9:
			if err := p.write(0xA, b); err != nil {
				return nil, fmt.Errorf("%s: pong: %w", p.id, err)
			}
		case 0x1, 0x2:
			if bytes.Contains(b, []byte(want)) {
				return b, nil
			}
		}
	}
}
