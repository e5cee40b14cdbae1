package sentinel

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// TestSendQueuePushDeferred: a reader's push leaves the writer asleep, and owes a flush, only
// when the queue's writing is idle and nobody owes one yet; in every other state someone else
// (the running writer, the direct writer's endDirect, setWriter, the reader that owes) writes
// the envelope, and nothing is owed twice.
func TestSendQueuePushDeferred(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(q *sendQueue)
		wantOwe bool
	}{
		{"idle, no writer", func(q *sendQueue) {}, true},
		{"writer parked (lingering)", func(q *sendQueue) { q.writer = writerParked }, true},
		{"writer running", func(q *sendQueue) { q.writer = writerRunning }, false},
		{"a direct write in progress", func(q *sendQueue) { q.direct = true }, false},
		{"a direct write's rest to flush", func(q *sendQueue) { q.needFlush = true }, false},
		{"writing not enabled yet (before attach)", func(q *sendQueue) { q.spawn = nil }, false},
		{"owed already by another reader", func(q *sendQueue) { q.owed = true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var global atomic.Int64
			q := newSendQueue(&global, queueLimits{count: 8, bytes: 1 << 10, globalBytes: 1 << 20})
			var spawned atomic.Int32
			q.spawn = func() { spawned.Add(1) }
			tc.setup(q)
			b := []byte("x")
			why, owe := q.pushDeferred(&b, &conn{})
			if why != queueOK || owe != tc.wantOwe {
				t.Fatalf("pushDeferred = %q, owe %v; want ok, owe %v", why, owe, tc.wantOwe)
			}
			if spawned.Load() != 0 {
				t.Fatal("a deferred push started a writer")
			}
			if owe {
				c := []byte("y")
				if _, again := q.pushDeferred(&c, &conn{}); again {
					t.Fatal("a second push owes the same flush again")
				}
			}
		})
	}
	var global atomic.Int64
	q := newSendQueue(&global, queueLimits{count: 1, bytes: 1 << 10, globalBytes: 1 << 20})
	q.spawn = func() {}
	a, b := []byte("a"), []byte("b")
	q.pushDeferred(&a, nil)
	if why, owe := q.pushDeferred(&b, nil); why != limitQueue || owe {
		t.Fatalf("a full queue: %q, owe %v; want %q", why, owe, limitQueue)
	}
}

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
	rc.q.mu.Lock()
	n, owed, direct := rc.q.n, rc.q.owed, rc.q.direct
	rc.q.mu.Unlock()
	if n != 0 || direct {
		t.Fatalf("replica queue after the calls: %d queued, direct %v, owed %v", n, direct, owed)
	}
}
