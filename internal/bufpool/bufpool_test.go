package bufpool

import "testing"

func TestGetIsEmpty(t *testing.T) {
	b := Get()
	*b = append(*b, "dirty"...)
	Put(b)
	for range 100 {
		g := Get()
		if len(*g) != 0 || cap(*g) == 0 {
			t.Fatalf("Get returned len %d cap %d", len(*g), cap(*g))
		}
		Put(g)
	}
}

func TestPutDropsHugeBuffers(t *testing.T) {
	big := make([]byte, 0, MaxPooled+1)
	Put(&big)
	if len(big) != 0 || cap(big) != MaxPooled+1 {
		t.Fatal("Put touched a buffer it drops")
	}
	for range 100 {
		g := Get()
		if cap(*g) > MaxPooled {
			t.Fatalf("pool handed out a %d-byte buffer", cap(*g))
		}
		Put(g)
	}
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p := Get()
		*p = append(*p, "payload"...)
		Put(p)
	}
}
