package wakeups

import (
	"bytes"
	"runtime"
	"runtime/trace"
	"strings"
	"testing"
)

// pingPong bounces a value between two goroutines n times over unbuffered channels.
func pingPong(n int) {
	ping, pong := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := range ping {
			pong <- v
		}
	}()
	for i := range n {
		ping <- i
		<-pong
	}
	close(ping)
	<-done
}

func TestCountPingPong(t *testing.T) {
	// One P makes the count exact: each round trip parks and wakes both goroutines once
	// (which of send and receive parks depends on the scheduler's order, not the count).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 1000
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	pingPong(n)
	trace.Stop()
	st, err := Count(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if st.Wakeups < 2*n || st.Wakeups > 2*n+100 {
		t.Fatalf("%d wake-ups for %d round trips, want about %d", st.Wakeups, n, 2*n)
	}
	if st.Created < 1 {
		t.Fatalf("created %d goroutines, want at least the echo one", st.Created)
	}
	var chanWakes int
	for site, k := range st.BySite {
		if strings.HasPrefix(site, "chan ") && strings.Contains(site, "wakeups.pingPong") {
			chanWakes += k
		}
	}
	if chanWakes < 2*n {
		t.Fatalf("%d wake-ups attributed to pingPong's channel operations, want >= %d:\n%s", chanWakes, 2*n, st.Top(n, 10))
	}
	if top := st.Top(n, 1); !strings.Contains(top, "/call") {
		t.Fatalf("Top: %q", top)
	}
}

func TestCountRejectsGarbage(t *testing.T) {
	if _, err := Count(strings.NewReader("not a trace")); err == nil {
		t.Fatal("garbage accepted")
	}
}
