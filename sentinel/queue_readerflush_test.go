package sentinel

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestReaderFlushOrderAndCompleteness: four clients' readers route calls concurrently to one
// replica through the reader flush (deferred pushes written before each reader's next read,
// handed to the writer goroutine when the socket is busy): the replica gets every call once,
// each client's in the order sent, and the replica connection's queue ends empty.
func TestReaderFlushOrderAndCompleteness(t *testing.T) {
	ts := startSentinel(t, map[string]string{"FAME_LOG_LEVEL": "warning"})
	r := dialRaw(t, ts, "r1")
	r.attach()
	r.bind("echo@fame.fabric")
	const clients, per = 4, 300
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		p := dialRaw(t, ts, fmt.Sprintf("c%d", c))
		p.attach()
		wg.Add(1)
		go func(c int, p *rawPeer) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				e := &envelope.Envelope{Version: envelope.Version, ID: envelope.NewID(), FlowID: p.flow, SeqID: p.seq,
					To: "echo@fame.fabric", ReplyTo: "__rpc__x@" + p.path, RType: envelope.RTypeReply, TS: envelope.Now()}
				p.seq++
				raw, _ := envelope.EncodeFrame(&envelope.Data{Payload: json.RawMessage(fmt.Sprintf(`{"c":%d,"i":%d}`, c, i))})
				e.Frame = raw
				b, err := e.AppendMarshal(nil)
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.sendRaw(b); err != nil {
					t.Error(err)
					return
				}
			}
		}(c, p)
	}
	next := make([]int, clients)
	deadline := time.Now().Add(20 * time.Second)
	for got := 0; got < clients*per; {
		e, err := r.read(time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d of %d calls: %v", got, clients*per, err)
		}
		f, err := e.DecodeFrame()
		if err != nil {
			t.Fatal(err)
		}
		d, ok := f.(*envelope.Data)
		if !ok {
			continue // a credit update
		}
		var p struct{ C, I int }
		if err := json.Unmarshal(d.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.I != next[p.C] {
			t.Fatalf("client %d: call %d arrived, want %d (lost, repeated or reordered)", p.C, p.I, next[p.C])
		}
		next[p.C]++
		got++
	}
	wg.Wait()
	ts.connsMu.Lock()
	var rc *conn
	for c := range ts.conns {
		if c.urlID == "r1" {
			rc = c
		}
	}
	ts.connsMu.Unlock()
	if rc == nil {
		t.Fatal("replica connection not found")
	}
	if n, b := rc.q.Len(), rc.q.Bytes(); n != 0 || b != 0 {
		t.Fatalf("replica queue after the calls: %d queued, %d bytes held", n, b)
	}
}
