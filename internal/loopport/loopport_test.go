package loopport

import (
	"fmt"
	"net"
	"testing"
)

// TestFree: the ports are distinct, below the ephemeral range, bindable and never handed
// out twice.
func TestFree(t *testing.T) {
	seen := map[int]bool{}
	for round := 0; round < 5; round++ {
		ps, err := Free(40)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 40 {
			t.Fatalf("got %d ports, want 40", len(ps))
		}
		for _, p := range ps {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if p < lowest || p >= ephemeralLow() {
				t.Fatalf("port %d outside [%d, %d)", p, lowest, ephemeralLow())
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Fatalf("port %d not bindable: %v", p, err)
			}
			l.Close()
		}
	}
}
