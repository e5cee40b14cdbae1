package e2e

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
)

// dialSlowReader attaches a raw peer that, once attached, never reads again: its socket
// buffers fill and the sentinel's writer to it blocks.
func dialSlowReader(t *testing.T, f *fabric, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, f.url()+"/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	e, _ := envelope.New(&envelope.NodeAttach{OriginType: "downstream", SystemID: id, InstanceID: envelope.NewID()})
	e.TraceID, e.CorrID, e.FlowID = envelope.NewID(), envelope.NewID(), envelope.NewID()
	b, _ := e.Marshal()
	if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("slow reader attach: %v", err)
		}
		ack, err := envelope.Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		if ack.FrameType() != envelope.TypeNodeAttachAck {
			continue
		}
		fr, _ := ack.DecodeFrame()
		a := fr.(*envelope.NodeAttachAck)
		if !a.OK {
			t.Fatalf("slow reader attach refused: %+v", a)
		}
		return a.AssignedPath
	}
}

// callRate runs sequential add calls on n for d and returns calls per second; any failed call
// fails the test (an innocent caller must not be refused).
func callRate(t *testing.T, n *node.Node, d time.Duration, workers int) float64 {
	t.Helper()
	var calls atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				var sum float64
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := n.Call(ctx, mathagent.Address, "add", map[string]any{"x": 1, "y": 2}, &sum)
				cancel()
				if err != nil || sum != 3 {
					failed.Store(err)
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("innocent call failed: %v", err)
	}
	return float64(calls.Load()) / d.Seconds()
}

// TestFloodToSlowReader: a flooding sender pushes 200 MB at a peer that reads nothing. The
// sentinel used to queue 4,096 envelopes whatever their size (580 × 200 KB held 118 MiB) and
// then disconnect the destination. Now the destination's queue is bounded in bytes, the flooding
// sender is nacked OVERLOADED once it holds its share, the peer that reads nothing is cut after
// the slow-consumer timeout, memory stays within the bounds, and another sender to another
// replica keeps being served throughout.
func TestFloodToSlowReader(t *testing.T) {
	const (
		queueBytes = 8 << 20 // the default per-connection bound
		floodBytes = 200 << 20
		msgBytes   = 64 << 10
	)
	f := newFabric(t, map[string]string{"FAME_SLOW_CONSUMER_TIMEOUT_MS": "3000"})
	f.startReplica("r1", "fame.fabric", nil, nil)
	innocent := f.connect(f.nodeConfig())
	callRate(t, innocent, 300*time.Millisecond, 4) // warm up
	unloaded := callRate(t, innocent, 2*time.Second, 4)

	slowPath := dialSlowReader(t, f, "slow")
	flooder := dialRaw(t, f, "flooder", nil)
	flooder.attach()
	var overloaded, nacked atomic.Int64
	stopNacks := make(chan struct{})
	nacksDone := make(chan struct{})
	go func() { // the flooder reads its nacks, so its own queue never fills
		defer close(nacksDone)
		for {
			select {
			case <-stopNacks:
				return
			case r := <-flooder.in:
				if r.err != nil {
					return
				}
				if e, err := envelope.Decode(r.b); err == nil && e.FrameType() == envelope.TypeDeliveryAck {
					nacked.Add(1)
					if strings.Contains(string(e.Frame), envelope.CodeOverloaded) {
						overloaded.Add(1)
					}
				}
			}
		}
	}()
	e, _ := envelope.New(&envelope.Data{Payload: json.RawMessage(`"` + strings.Repeat("x", msgBytes-600) + `"`)})
	e.SID, e.TraceID, e.FlowID = envelope.SecureDigest(flooder.path), envelope.NewID(), envelope.NewID()
	e.To, e.ReplyTo, e.RType, e.CorrID = "sink@"+slowPath, "__rpc__x@"+flooder.path, envelope.RTypeReply, envelope.NewID()
	msg, _ := e.Marshal()

	runtime.GC()
	baseLive, baseRSS := liveHeap(), vmRSS()
	mem := startMemSampler()
	floodDone := make(chan time.Duration)
	go func() {
		start := time.Now()
		for sent := 0; sent < floodBytes; sent += len(msg) {
			if err := flooder.sendRaw(msg); err != nil {
				break
			}
		}
		floodDone <- time.Since(start)
	}()
	loaded := callRate(t, innocent, 2*time.Second, 4)
	floodTook := <-floodDone
	peakLive, peakRSS := mem.finish()
	queued := f.metric(t, "fame_queued_bytes")

	waitUntil(t, 15*time.Second, "the slow reader to be cut", func() bool { return refusals(t, f, "slow_consumer") >= 1 })
	close(stopNacks)
	<-nacksDone
	share := refusals(t, f, "send_queue_share") + refusals(t, f, "send_queue")
	t.Logf("flood of %d MB in %v; OVERLOADED nacks %d of %d nacks; queue refusals %v",
		floodBytes>>20, floodTook.Round(time.Millisecond), overloaded.Load(), nacked.Load(), share)
	t.Logf("live heap: base %.1f MiB, peak %.1f MiB (+%.1f); RSS: base %.1f MiB, peak %.1f MiB (+%.1f); queued after flood %.1f MiB",
		mib(baseLive), mib(peakLive), mib(peakLive)-mib(baseLive), mib(baseRSS), mib(peakRSS), mib(peakRSS)-mib(baseRSS), queued/(1<<20))
	t.Logf("innocent sender to another replica: %.0f calls/s unloaded, %.0f calls/s during the flood (%.0f%%)",
		unloaded, loaded, 100*loaded/unloaded)

	if overloaded.Load() == 0 || share == 0 {
		t.Fatalf("the flooding sender was never nacked OVERLOADED (nacks %d, refusals %v)", nacked.Load(), share)
	}
	// The slow reader's queue (one sender holds at most half of it) and the flooder's own nacks
	// are all the flood may hold; 50 MiB covers the test's own clients and buffers.
	if grew := int64(peakLive) - int64(baseLive); grew > 2*queueBytes+50<<20 {
		t.Fatalf("live heap grew by %.1f MiB under the flood, bound %d MiB", float64(grew)/(1<<20), (2*queueBytes+50<<20)>>20)
	}
	victimServes(t, f, innocent)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
