package cluster

import (
	"sync"
	"testing"
	"time"
)

// benchBus is a bus of its own on member i's embedded server (the sentinel's in-process
// connection), for the forward-path benchmarks.
func benchBus(b *testing.B, i int, id string) *NATSBus {
	b.Helper()
	cfg := shared.members[i].Config
	cfg.SentinelID = id
	nc, err := Connect(cfg, shared.members[i].Embedded, nil)
	if err != nil {
		b.Fatal(err)
	}
	bus, err := NewBus(nc, cfg, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bus.Close(); nc.Close() })
	return bus
}

// BenchmarkBusRoundTrip: what the two bus hops of a forwarded call cost by themselves (the
// request to the replica's sentinel and the reply back), on two embedded servers joined by a
// TLS route on loopback, without a sentinel or a WebSocket: an envelope-sized message
// published by "A", echoed by "B", received by A. Sequential, and with 50 in flight.
func BenchmarkBusRoundTrip(b *testing.B) {
	env := make([]byte, 360) // about a call envelope with its replica id line
	for i := range env {
		env[i] = 'x'
	}
	for _, inflight := range []int{1, 50} {
		b.Run(map[int]string{1: "sequential", 50: "inflight50"}[inflight], func(b *testing.B) {
			id := map[int]string{1: "seq", 50: "par"}[inflight]
			a, c := benchBus(b, 0, "bencha"+id), benchBus(b, 1, "benchb"+id)
			if err := c.Subscribe(func(from string, m []byte) { _ = c.Publish(from, m) }); err != nil {
				b.Fatal(err)
			}
			back := make(chan struct{}, 1024)
			if err := a.Subscribe(func(string, []byte) { back <- struct{}{} }); err != nil {
				b.Fatal(err)
			}
			// Interest crosses the route asynchronously: probe until an echo comes back.
			deadline := time.Now().Add(10 * time.Second)
			for ok := false; !ok; {
				if time.Now().After(deadline) {
					b.Fatal("no echo over the route")
				}
				_ = a.Publish("benchb"+id, env)
				select {
				case <-back:
					ok = true
				case <-time.After(20 * time.Millisecond):
				}
			}
			time.Sleep(50 * time.Millisecond)
			for len(back) > 0 {
				<-back
			}
			b.SetBytes(int64(len(env)))
			b.ResetTimer()
			var wg sync.WaitGroup
			sem := make(chan struct{}, inflight)
			wg.Add(1)
			go func() { // the receiver: one token back per echo
				defer wg.Done()
				for i := 0; i < b.N; i++ {
					select {
					case <-back:
						<-sem
					case <-time.After(10 * time.Second):
						b.Error("echo lost")
						return
					}
				}
			}()
			for i := 0; i < b.N; i++ {
				sem <- struct{}{}
				if err := a.Publish("benchb"+id, env); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
		})
	}
}
