package stickiness

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSetLimits: a live table takes a new idle TTL (binds from then on expire by it), a new cap
// and a smaller capacity (the least recently used bindings go at once, counted as evictions);
// nonsense is refused and changes nothing.
func TestSetLimits(t *testing.T) {
	tbl, clk := newTestTable(t, func(c *Config) { c.CacheMax = 100 })
	for i := range 10 {
		tbl.Bind(fmt.Sprintf("s%d", i), "r1", 0)
	}
	if err := tbl.SetLimits(time.Minute, 2*time.Minute, 4); err != nil {
		t.Fatal(err)
	}
	if c := tbl.Config(); c.DefaultTTL != time.Minute || c.MaxTTL != 2*time.Minute || c.CacheMax != 4 {
		t.Fatalf("config %+v", c)
	}
	if st := tbl.Stats(); st.Size != 4 || st.Evictions != 6 {
		t.Fatalf("size %d evictions %d, want 4 and 6", st.Size, st.Evictions)
	}
	for i := 6; i < 10; i++ { // the most recently bound ones stay
		if _, ok := tbl.Lookup(fmt.Sprintf("s%d", i)); !ok {
			t.Fatalf("s%d evicted", i)
		}
	}
	tbl.Bind("fresh", "r1", 0)             // the new idle TTL: one minute
	tbl.Bind("long", "r1", 10*time.Minute) // capped at the new MaxTTL
	clk.add(61 * time.Second)
	if _, ok := tbl.Lookup("fresh"); ok {
		t.Fatal("a binding made after SetLimits outlived the new TTL")
	}
	if _, ok := tbl.Lookup("long"); !ok {
		t.Fatal("long binding gone before its (capped) TTL")
	}
	clk.add(2 * time.Minute)
	if _, ok := tbl.Lookup("long"); ok {
		t.Fatal("long binding outlived the new MaxTTL")
	}
	if err := tbl.SetLimits(-time.Second, 0, 0); err == nil {
		t.Fatal("a negative TTL accepted")
	}
	if c := tbl.Config(); c.DefaultTTL != time.Minute || c.CacheMax != 4 {
		t.Fatalf("a refused SetLimits changed the config: %+v", c)
	}
	// Binds racing a resize (run with -race).
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				tbl.Bind(fmt.Sprintf("g%d-%d", g, i), "r2", 0)
			}
		}()
	}
	for _, n := range []int{50, 8, 200} {
		if err := tbl.SetLimits(time.Minute, 2*time.Minute, n); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if st := tbl.Stats(); st.Size > 200 {
		t.Fatalf("size %d over the capacity 200", st.Size)
	}
}
