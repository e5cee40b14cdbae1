package wsengine

import (
	"context"
	"io"
	"slices"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/internal/bufpool"
)

// ReadMessage waits for the connection's next message and reads it into a buffer from
// internal/bufpool, which the caller must put back (also on error: nil then, when no message
// began). The buffer is taken only once a message has begun, so a reader waiting on an idle
// connection holds none, and a busy reader allocates nothing per message. What a caller keeps
// of the message past the buffer's return it must copy: the sentinel routes from the buffer
// and keeps nothing; the node copies each message once, at its exact size (io.ReadAll, what
// websocket.Conn.Read uses, grows a fresh buffer several times for one envelope).
func ReadMessage(ctx context.Context, ws *websocket.Conn) (*[]byte, error) {
	_, r, err := ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	b := bufpool.Get()
	buf := (*b)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(cap(buf), 512)) // doubling: a large message costs few copies
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			*b = buf
			return b, nil
		}
		if err != nil {
			*b = buf
			return b, err
		}
	}
}
