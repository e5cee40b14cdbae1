package sentinel

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fame-go/fame/cluster"
)

// pipeSharer delivers a sentinel's batches straight to its peers' subscribers (core NATS
// without the network), through the wire encoding.
type pipeSharer struct {
	self  string
	peers *[]*pipeSharer
	fn    func(string, []cluster.RateUse, error)
}

func (p *pipeSharer) PublishRate(uses []cluster.RateUse) error {
	data, err := cluster.EncodeRateBatch(p.self, uses)
	if err != nil {
		return err
	}
	for _, q := range *p.peers {
		if q != p && q.fn != nil {
			from, u, err := cluster.DecodeRateBatch(data)
			q.fn(from, u, err)
		}
	}
	return nil
}

func (p *pipeSharer) SubscribeRate(fn func(string, []cluster.RateUse, error)) (func(), error) {
	p.fn = fn
	return func() {}, nil
}

// rateClusterServed runs one caller at twice its limit (limit 50/s, burst 5), split evenly
// over two sentinels, for 10 s, and returns the calls served in total.
func rateClusterServed(t *testing.T, shared bool) (served int, a, b *rateLimits) {
	o := RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 50, Burst: 5}}}
	a, regA := testRateLimits(t, o)
	b, regB := testRateLimits(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait() // the publishers exit when their context ends
	defer cancel()
	if shared {
		var peers []*pipeSharer
		pa, pb := &pipeSharer{self: "a", peers: &peers}, &pipeSharer{self: "b", peers: &peers}
		peers = []*pipeSharer{pa, pb}
		if err := a.share(ctx, &wg, pa, regA); err != nil {
			t.Fatal(err)
		}
		if err := b.share(ctx, &wg, pb, regB); err != nil {
			t.Fatal(err)
		}
	}
	hot := &conn{identity: identity{systemID: "hot"}}
	for i := 0; i < 1000; i++ { // 100 calls/s for 10 s, alternating sentinels
		time.Sleep(10 * time.Millisecond)
		r := a
		if i%2 == 1 {
			r = b
		}
		if _, _, _, ok := r.check(hot, rateReq("h"), []byte("m@f"), false); ok {
			served++
		}
	}
	return served, a, b
}

// TestRateClusterShared: two sentinels exchanging consumption every 100 ms serve a caller at
// twice its limit its limit ± 10 % over 10 s; without sharing they serve about twice as much.
func TestRateClusterShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		served, a, b := rateClusterServed(t, true)
		want := 50 * 10.0
		if d := float64(served) - want; d > 0.1*want || d < -0.1*want {
			t.Fatalf("shared: %d served over 10 s, want %.0f ± 10%%", served, want)
		}
		for _, r := range []*rateLimits{a, b} {
			if p, rc := counterValue(t, r.shareM.published), counterValue(t, r.shareM.received); p == 0 || rc == 0 {
				t.Fatalf("fame_rate_shared_published_total %v, received %v: want both > 0", p, rc)
			}
		}
		t.Logf("shared: %d served of 1000 (limit 500)", served)
	})
	synctest.Test(t, func(t *testing.T) {
		served, _, _ := rateClusterServed(t, false)
		if served < 900 {
			t.Fatalf("unshared: %d served; the two sentinels should each grant the limit (~1000)", served)
		}
		t.Logf("unshared: %d served of 1000 (limit 500)", served)
	})
}

// TestRateClusterMalformed: a malformed batch is counted dropped and charges nothing.
func TestRateClusterMalformed(t *testing.T) {
	o := RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 1, Burst: 1}}}
	a, reg := testRateLimits(t, o)
	p := &pipeSharer{self: "a", peers: new([]*pipeSharer)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := a.share(ctx, &wg, p, reg); err != nil {
		t.Fatal(err)
	}
	_, _, err := cluster.DecodeRateBatch([]byte(`{"s":"b","u":[{"k":"identity","n":"hot","t":-1}]}`))
	p.fn("", nil, err)
	if got := counterValue(t, a.shareM.dropped); got != 1 {
		t.Fatalf("fame_rate_shared_dropped_total = %v, want 1", got)
	}
	if _, _, _, ok := a.check(&conn{identity: identity{systemID: "hot"}}, rateReq("h"), []byte("m@f"), false); !ok {
		t.Fatal("a malformed batch charged the bucket")
	}
}

// TestRateClusterCollect: a batch carries every key used since the last one, with its total,
// once; a key used again after a batch is in the next one; an unused key is in none.
func TestRateClusterCollect(t *testing.T) {
	o := RateLimitOptions{
		PerIdentity: RateRule{Default: RateSpec{Rate: 1000, Burst: 1000}, Overrides: map[string]RateSpec{"vip": {Rate: 1000, Burst: 1000}}},
		PerAddress:  RateRule{Default: RateSpec{Rate: 1000, Burst: 1000}},
	}
	r, _ := testRateLimits(t, o)
	r.shared = true
	call := func(id, dest string, n int) {
		for i := 0; i < n; i++ {
			if _, _, _, ok := r.check(&conn{identity: identity{systemID: id}}, rateReq("h"), []byte(dest), false); !ok {
				t.Fatalf("%s -> %s refused", id, dest)
			}
		}
	}
	sum := func(uses []cluster.RateUse) map[string]int64 {
		m := map[string]int64{}
		for _, u := range uses {
			if _, dup := m[u.Kind+"/"+u.Key]; dup {
				t.Fatalf("%s/%s twice in one batch", u.Kind, u.Key)
			}
			m[u.Kind+"/"+u.Key] = u.Tokens
		}
		return m
	}
	call("a", "m@f", 3)
	call("vip", "m@f", 2)
	call("idle", "n@f", 0)
	got := sum(r.collect())
	want := map[string]int64{"identity/a": 3, "identity/vip": 2, "address/m@f": 5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first batch %v, want %v", got, want)
	}
	if got := r.collect(); len(got) != 0 {
		t.Fatalf("a batch with no use since the last: %v", got)
	}
	call("a", "n@f", 1)
	got = sum(r.collect())
	want = map[string]int64{"identity/a": 1, "address/n@f": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second batch %v, want %v", got, want)
	}
}
