package lru

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	golanglru "github.com/hashicorp/golang-lru/v2"

	"strconv"
)

// TestMatchesSimpleLRU drives Cache and golang-lru's simplelru (whose behaviour the replay
// guard was written against) with the same random operations and compares every result,
// every eviction callback and the final key order.
func TestMatchesSimpleLRU(t *testing.T) {
	for _, size := range []int{1, 2, 3, 8, 64} {
		rng := rand.New(rand.NewPCG(uint64(size), 7))
		var gotEv, wantEv []int
		c, err := NewLRU[int, int](size, func(k, v int) { gotEv = append(gotEv, k, v) })
		if err != nil {
			t.Fatal(err)
		}
		ref, err := simplelru.NewLRU[int, int](size, func(k, v int) { wantEv = append(wantEv, k, v) })
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20000; i++ {
			k, v := rng.IntN(size*3), rng.Int()
			switch op := rng.IntN(7); op {
			case 0, 1:
				if a, b := c.Add(k, v), ref.Add(k, v); a != b {
					t.Fatalf("size %d step %d: Add(%d) evicted %v, want %v", size, i, k, a, b)
				}
			case 2:
				a, aok := c.Get(k)
				b, bok := ref.Get(k)
				if a != b || aok != bok {
					t.Fatalf("size %d step %d: Get(%d) = %d %v, want %d %v", size, i, k, a, aok, b, bok)
				}
			case 3:
				a, aok := c.Peek(k)
				b, bok := ref.Peek(k)
				if a != b || aok != bok || c.Contains(k) != ref.Contains(k) {
					t.Fatalf("size %d step %d: Peek/Contains(%d) differ", size, i, k)
				}
			case 4:
				ak, av, aok := c.GetOldest()
				bk, bv, bok := ref.GetOldest()
				if ak != bk || av != bv || aok != bok {
					t.Fatalf("size %d step %d: GetOldest differs", size, i)
				}
			case 5:
				ak, av, aok := c.RemoveOldest()
				bk, bv, bok := ref.RemoveOldest()
				if ak != bk || av != bv || aok != bok {
					t.Fatalf("size %d step %d: RemoveOldest differs", size, i)
				}
			case 6:
				if !slices.Equal(c.Keys(), ref.Keys()) || c.Len() != ref.Len() {
					t.Fatalf("size %d step %d: keys %v, want %v", size, i, c.Keys(), ref.Keys())
				}
			}
			if !slices.Equal(gotEv, wantEv) {
				t.Fatalf("size %d step %d: evictions %v, want %v", size, i, gotEv, wantEv)
			}
		}
	}
}

func TestNewRefusesBadSize(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := NewLRU[string, int](n, nil); !errors.Is(err, ErrSize) {
			t.Errorf("New(%d) err = %v", n, err)
		}
	}
}

func TestEmpty(t *testing.T) {
	c, _ := NewLRU[string, int](2, nil)
	if _, _, ok := c.GetOldest(); ok {
		t.Error("GetOldest on empty cache")
	}
	if _, _, ok := c.RemoveOldest(); ok {
		t.Error("RemoveOldest on empty cache")
	}
	if len(c.Keys()) != 0 || c.Len() != 0 {
		t.Error("empty cache has keys")
	}
}

func BenchmarkAddPeek(b *testing.B) {
	c, _ := NewLRU[string, int](4096, nil)
	keys := make([]string, 8192)
	for i := range keys {
		keys[i] = string(rune('a'+i%26)) + string(rune(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		if _, ok := c.Peek(k); !ok {
			c.Add(k, i)
		}
		i++
	}
}

// TestCacheMatchesGolangLRU compares Cache with golang-lru/v2's Cache (which the node used) on
// the methods the node calls.
func TestCacheMatchesGolangLRU(t *testing.T) {
	const size = 16
	rng := rand.New(rand.NewPCG(3, 9))
	c, err := New[int, int](size)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := golanglru.New[int, int](size)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20000; i++ {
		k, v := rng.IntN(size*3), rng.Int()
		switch rng.IntN(4) {
		case 0:
			if a, b := c.Add(k, v), ref.Add(k, v); a != b {
				t.Fatalf("step %d: Add evicted %v, want %v", i, a, b)
			}
		case 1:
			a, aok := c.Get(k)
			b, bok := ref.Get(k)
			if a != b || aok != bok {
				t.Fatalf("step %d: Get(%d) = %d %v, want %d %v", i, k, a, aok, b, bok)
			}
		case 2:
			a1, a2 := c.ContainsOrAdd(k, v)
			b1, b2 := ref.ContainsOrAdd(k, v)
			if a1 != b1 || a2 != b2 {
				t.Fatalf("step %d: ContainsOrAdd(%d) = %v %v, want %v %v", i, k, a1, a2, b1, b2)
			}
		case 3:
			if a, b := c.Remove(k), ref.Remove(k); a != b {
				t.Fatalf("step %d: Remove(%d) = %v, want %v", i, k, a, b)
			}
		}
		if c.Len() != ref.Len() || !slices.Equal(c.lru.Keys(), ref.Keys()) {
			t.Fatalf("step %d: keys %v, want %v", i, c.lru.Keys(), ref.Keys())
		}
	}
}

// BenchmarkContainsOrAdd is the node's per-envelope dedupe step (a fresh id each time, so
// every call adds and, once full, evicts), next to golang-lru's Cache it replaced.
func BenchmarkContainsOrAdd(b *testing.B) {
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = strconv.Itoa(i) + "-envelope-id"
	}
	b.Run("internal", func(b *testing.B) {
		c, _ := New[string, struct{}](4096)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.ContainsOrAdd(ids[i&(len(ids)-1)], struct{}{})
			i++
		}
	})
	b.Run("golang-lru", func(b *testing.B) {
		c, _ := golanglru.New[string, struct{}](4096)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.ContainsOrAdd(ids[i&(len(ids)-1)], struct{}{})
			i++
		}
	})
}
