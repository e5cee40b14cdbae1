package ceiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/internal/corkconn"
)

// Config is shared by the relay, the echo agent and the caller.
type Config struct {
	// Log receives refusals (nil: discarded).
	Log *slog.Logger
	// Batched gives every connection a writer goroutine that corks the socket around all the
	// messages queued at that moment (internal/corkconn), so a burst costs one write(2)
	// instead of one per message. It adds a goroutine hop per message, so it helps under
	// pipelined load and costs latency when calls are sequential. Off: the reader of one
	// connection writes straight into the other, one write(2) per message.
	Batched bool
}

func (c Config) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// queueLen bounds a batched connection's queue; a sender blocks (the benchmark's back
// pressure) when it is full.
const queueLen = 1024

// sender writes messages to one connection, directly or through a batching writer.
type sender struct {
	ws   *websocket.Conn
	cork *corkconn.Conn     // nil: not batched
	q    chan []byte        // batched: messages for the writer
	done chan struct{}      // batched: closed when the writer has exited
	stop context.CancelFunc // batched: ends the writer
	err  error              // batched: why the writer stopped; read after done
}

// newSender returns a direct sender, or (cork != nil) starts a batching writer that runs
// until close.
func newSender(ws *websocket.Conn, cork *corkconn.Conn) *sender {
	s := &sender{ws: ws, cork: cork}
	if cork == nil {
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.q, s.done, s.stop = make(chan []byte, queueLen), make(chan struct{}), cancel
	go s.writer(ctx)
	return s
}

// send writes msg (direct) or queues a copy of it (batched): msg may be reused on return.
// owned says msg is not reused by the caller, so no copy is needed.
func (s *sender) send(ctx context.Context, msg []byte, owned bool) error {
	if s.cork == nil {
		return s.ws.Write(ctx, websocket.MessageText, msg)
	}
	if !owned {
		msg = append([]byte(nil), msg...)
	}
	select {
	case s.q <- msg:
		return nil
	case <-s.done:
		return fmt.Errorf("ceiling: writer stopped: %w", s.err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sender) writer(ctx context.Context) {
	defer close(s.done)
	for {
		var msg []byte
		select {
		case msg = <-s.q:
		case <-ctx.Done():
			s.err = ctx.Err()
			return
		}
		s.cork.Cork()
		err := s.ws.Write(ctx, websocket.MessageText, msg)
	drain:
		for err == nil {
			select {
			case msg = <-s.q:
				err = s.ws.Write(ctx, websocket.MessageText, msg)
			default:
				break drain
			}
		}
		if uerr := s.cork.Uncork(5 * time.Second); err == nil {
			err = uerr
		}
		if err != nil {
			s.err = err
			s.ws.CloseNow()
			return
		}
	}
}

// close ends a batching writer and waits for it.
func (s *sender) close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// dialOptions returns the options to dial with, and (batched) where the dialled socket's
// cork wrapper will be stored.
func (c Config) dialOptions() (*websocket.DialOptions, func() *corkconn.Conn) {
	o := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
	if !c.Batched {
		return o, func() *corkconn.Conn { return nil }
	}
	var got *corkconn.Conn
	tr := &http.Transport{DialContext: corkconn.Dialer(&net.Dialer{Timeout: 10 * time.Second}, func(cc *corkconn.Conn) { got = cc })}
	o.HTTPClient = &http.Client{Transport: tr}
	return o, func() *corkconn.Conn { return got }
}

// dialSender dials u and returns the connection and its sender.
func (c Config) dialSender(ctx context.Context, u string) (*websocket.Conn, *sender, error) {
	o, cork := c.dialOptions()
	ws, _, err := websocket.Dial(ctx, u, o)
	if err != nil {
		return nil, nil, err
	}
	ws.SetReadLimit(readLimit)
	if c.Batched && cork() == nil {
		ws.CloseNow()
		return nil, nil, errNoCork
	}
	return ws, newSender(ws, cork()), nil
}

// errNoCork: batching was asked for but the socket under the WebSocket is not wrapped.
var errNoCork = errors.New("ceiling: batched, but the socket is not corkable")
