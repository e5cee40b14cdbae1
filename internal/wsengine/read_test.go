package wsengine

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/internal/bufpool"
)

// TestReadMessage: messages of every size around the buffer's growth steps arrive whole and
// in order; a connection closed while the reader waits returns an error and no buffer.
func TestReadMessage(t *testing.T) {
	sizes := []int{0, 1, 511, 512, 513, 4096, 70000, 300000}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for _, n := range sizes {
			if err := ws.Write(context.Background(), websocket.MessageBinary, bytes.Repeat([]byte{byte(n)}, n)); err != nil {
				return
			}
		}
		_ = ws.Close(websocket.StatusNormalClosure, "done")
	}))
	defer srv.Close()
	ws, _, err := websocket.Dial(t.Context(), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	for _, n := range sizes {
		b, err := ReadMessage(t.Context(), ws)
		if err != nil {
			t.Fatalf("message of %d bytes: %v", n, err)
		}
		if want := bytes.Repeat([]byte{byte(n)}, n); !bytes.Equal(*b, want) {
			t.Fatalf("message of %d bytes read as %d bytes", n, len(*b))
		}
		bufpool.Put(b)
	}
	b, err := ReadMessage(t.Context(), ws)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure || b != nil {
		t.Fatalf("after the peer's close: buffer %v, err %v; want no buffer and its close", b != nil, err)
	}
}
