package admit

import (
	"os"
	"testing"
	"time"
)

// BenchmarkTokenCached is the per-dial cost of Config.Token once a token is
// cached.
func BenchmarkTokenCached(b *testing.B) {
	s := newStack(b, stackOpts{})
	src, err := s.clientCredentials().TokenSource()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := src.Token(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := src.Token(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseWelcome(b *testing.B) {
	body, err := os.ReadFile("testdata/welcome-a6.json")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseWelcome(body, now); err != nil {
			b.Fatal(err)
		}
	}
}
