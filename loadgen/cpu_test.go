package loadgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses; utime 250 and stime 50 ticks.
	line := []byte("4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 100 1000 200 0\n")
	got, err := parseStatCPU(line)
	if err != nil || got != 3*time.Second {
		t.Fatalf("got %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{"", "4242 no paren S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 500 0 0 0 x 50 0"} {
		if _, err := parseStatCPU([]byte(bad)); !errors.Is(err, ErrNoProc) {
			t.Errorf("%q: err %v, want ErrNoProc", bad, err)
		}
	}
}

func TestRunMeasuresCPU(t *testing.T) {
	// Each call burns about 2 ms of CPU in this process; the figure per call must reflect it.
	burn := func(ctx context.Context, _ int) error {
		end := time.Now().Add(2 * time.Millisecond)
		for time.Now().Before(end) {
		}
		return nil
	}
	res, err := Run(context.Background(), Options{Callers: 1, Duration: 400 * time.Millisecond, CPU: map[string]int{"self": 0, "gone": 1 << 30}}, burn)
	if err != nil {
		t.Fatal(err)
	}
	if res.CPU["self"] <= 0 || res.CPUPerCall("self") <= 0 {
		t.Fatalf("cpu %v, per call %v", res.CPU, res.CPUPerCall("self"))
	}
	if !errors.Is(res.CPUErrors["gone"], ErrNoProc) {
		t.Fatalf("missing process: err %v", res.CPUErrors["gone"])
	}
	s := res.Summary()
	if s.CPUusPerCall["self"] <= 0 || s.CPUs["self"] <= 0 {
		t.Fatalf("summary cpu %v %v", s.CPUs, s.CPUusPerCall)
	}
	var b strings.Builder
	if err := res.WriteText(&b, "t"); err != nil || !strings.Contains(b.String(), "cpu/call  self ") || !strings.Contains(b.String(), "gone:") {
		t.Fatalf("text %q, %v", b.String(), err)
	}
}
