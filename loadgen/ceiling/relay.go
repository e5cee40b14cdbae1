package ceiling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/internal/corkconn"
)

// readLimit bounds one envelope; far above what the benchmark sends.
const readLimit = 1 << 20

// Errors a caller may branch on.
var (
	// ErrNoAgent: a caller attached before the echo agent did.
	ErrNoAgent = errors.New("ceiling: no agent attached")
	// ErrBadEnvelope: a message was not a JSON object with the fields the part needs.
	ErrBadEnvelope = errors.New("ceiling: bad envelope")
)

// Relay forwards caller envelopes to the one echo agent and replies back to their caller.
type Relay struct {
	log     *slog.Logger
	batched bool

	mu      sync.Mutex
	agent   *sender
	clients map[string]*sender // by reply inbox address ("to" of the replies)
}

// NewRelay returns a relay configured by cfg.
func NewRelay(cfg Config) *Relay {
	return &Relay{log: cfg.log(), batched: cfg.Batched, clients: map[string]*sender{}}
}

// accept upgrades req and returns the connection with its sender.
func (r *Relay) accept(w http.ResponseWriter, req *http.Request, who string) (*websocket.Conn, *sender, bool) {
	ws, err := websocket.Accept(w, req, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		r.log.Warn("ceiling relay: upgrade failed", "who", who, "peer", req.RemoteAddr, "err", err)
		return nil, nil, false
	}
	ws.SetReadLimit(readLimit)
	var cork *corkconn.Conn
	if r.batched {
		if cork = corkconn.FromContext(req.Context()); cork == nil {
			r.log.Error("ceiling relay: batched but the socket is not corkable", "who", who, "peer", req.RemoteAddr)
			ws.Close(websocket.StatusInternalError, "socket not corkable")
			return nil, nil, false
		}
	}
	return ws, newSender(ws, cork), true
}

// ReplyAddress is the inbox a caller named id receives its replies at: the "replyTo" of its
// requests and the "to" of the agent's replies.
func ReplyAddress(id string) string { return "__rpc__" + id + "@/relay/" + id }

// ServeHTTP accepts /agent (the echo agent, one at a time) and /client?id=NAME (callers);
// GET /ready answers 200 once the agent is attached.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/agent":
		r.serveAgent(w, req)
	case "/client":
		r.serveClient(w, req)
	case "/ready":
		// 200 once the agent is attached: callers may start.
		r.mu.Lock()
		ok := r.agent != nil
		r.mu.Unlock()
		if !ok {
			http.Error(w, "no agent attached", http.StatusServiceUnavailable)
		}
	default:
		http.NotFound(w, req)
	}
}

func (r *Relay) serveAgent(w http.ResponseWriter, req *http.Request) {
	ws, snd, ok := r.accept(w, req, "agent")
	if !ok {
		return
	}
	defer snd.close()
	r.mu.Lock()
	if r.agent != nil {
		r.mu.Unlock()
		r.log.Warn("ceiling relay: refused a second agent", "peer", req.RemoteAddr)
		ws.Close(websocket.StatusPolicyViolation, "an agent is already attached")
		return
	}
	r.agent = snd
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.agent = nil
		r.mu.Unlock()
	}()
	err := pump(req.Context(), ws, func(msg []byte, m map[string]any) error {
		to, _ := m["to"].(string)
		r.mu.Lock()
		c := r.clients[to]
		r.mu.Unlock()
		if c == nil {
			// The caller left; its reply has nowhere to go (a real router would nack).
			return nil
		}
		// A failed write to one caller is that caller's problem, not the agent's.
		_ = c.send(req.Context(), msg, false)
		return nil
	})
	closeFor(ws, err, r.log, "agent", req.RemoteAddr)
}

func (r *Relay) serveClient(w http.ResponseWriter, req *http.Request) {
	id := req.URL.Query().Get("id")
	if id == "" {
		http.Error(w, "ceiling relay: ?id= is required", http.StatusBadRequest)
		return
	}
	addr := ReplyAddress(id)
	ws, snd, ok := r.accept(w, req, "client "+id)
	if !ok {
		return
	}
	defer snd.close()
	r.mu.Lock()
	if _, taken := r.clients[addr]; taken {
		r.mu.Unlock()
		r.log.Warn("ceiling relay: refused a duplicate caller id", "peer", req.RemoteAddr, "id", id)
		ws.Close(websocket.StatusPolicyViolation, "caller id in use")
		return
	}
	r.clients[addr] = snd
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.clients, addr)
		r.mu.Unlock()
	}()
	err := pump(req.Context(), ws, func(msg []byte, _ map[string]any) error {
		r.mu.Lock()
		a := r.agent
		r.mu.Unlock()
		if a == nil {
			return ErrNoAgent
		}
		if err := a.send(req.Context(), msg, false); err != nil {
			return fmt.Errorf("%w: %v", ErrNoAgent, err)
		}
		return nil
	})
	closeFor(ws, err, r.log, "client "+id, req.RemoteAddr)
}

// Serve runs the relay on l until ctx ends.
func (r *Relay) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	if r.batched {
		l = corkconn.Listener{Listener: l}
		srv.ConnContext = corkconn.ConnContext
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	<-done // Serve returns as soon as Shutdown starts; wait for it to finish
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// pump reads messages from ws until it closes, parses each once into a map and hands both
// the raw bytes and the map to handle. The read buffer is reused: handle must not keep msg
// (coder/websocket's Write copies it before returning).
func pump(ctx context.Context, ws *websocket.Conn, handle func(msg []byte, m map[string]any) error) error {
	var buf bytes.Buffer
	for {
		typ, rd, err := ws.Reader(ctx)
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			return err
		}
		if typ != websocket.MessageText {
			return fmt.Errorf("%w: binary message", ErrBadEnvelope)
		}
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			return fmt.Errorf("%w: %v", ErrBadEnvelope, err)
		}
		if err := handle(buf.Bytes(), m); err != nil {
			return err
		}
	}
}

// closeFor closes ws with a reason that says why the pump stopped; a peer that simply went
// away is not worth a log line.
func closeFor(ws *websocket.Conn, err error, log *slog.Logger, who, peer string) {
	switch {
	case errors.Is(err, ErrBadEnvelope):
		log.Warn("ceiling: closing on a bad envelope", "who", who, "peer", peer, "err", err)
		ws.Close(websocket.StatusUnsupportedData, truncate(err.Error()))
	case errors.Is(err, ErrNoAgent):
		log.Warn("ceiling: closing a caller, no agent", "who", who, "peer", peer, "err", err)
		ws.Close(websocket.StatusTryAgainLater, "no agent attached")
	case websocket.CloseStatus(err) != -1, errors.Is(err, io.EOF), errors.Is(err, context.Canceled):
		ws.CloseNow()
	default:
		log.Debug("ceiling: connection ended", "who", who, "peer", peer, "err", err)
		ws.CloseNow()
	}
}

// truncate keeps a close reason within the 123 bytes a close frame allows.
func truncate(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}
