package loopport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

// lowest is the bottom of the range ports are drawn from: above the well-known and most
// registered service ports a developer machine may run.
const lowest = 20000

// ErrNoPort: no free port was found below the ephemeral range.
var ErrNoPort = errors.New("loopport: no free port below the ephemeral range")

var (
	// mu guards given: the ports this process has handed out.
	mu    sync.Mutex
	given = map[int]bool{}
)

// Free returns n distinct loopback TCP ports that were free a moment ago, drawn at random
// below the kernel's ephemeral range.
func Free(n int) ([]int, error) {
	hi := ephemeralLow() - 1
	if hi-lowest < 1000 {
		return nil, fmt.Errorf("%w: the ephemeral range starts at %d", ErrNoPort, hi+1)
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]int, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 20000 {
			return nil, fmt.Errorf("%w (%d-%d) after %d tries", ErrNoPort, lowest, hi, tries)
		}
		p := lowest + rand.IntN(hi-lowest+1)
		if given[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // in use
		}
		_ = l.Close()
		given[p] = true
		out = append(out, p)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range: Linux's default, 32768,
// where it cannot be read (not Linux) or starts at or below lowest (a machine configured
// with a wide ephemeral range, where the ports drawn can be ephemeral ones after all and
// the race this package avoids comes back).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= lowest {
		return 32768
	}
	return lo
}
