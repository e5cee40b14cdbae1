package main

import (
	"maps"
	"testing"
)

func TestParseCPUPids(t *testing.T) {
	got, err := parseCPUPids(" sentinel=12, agent=34 ,")
	if err != nil || !maps.Equal(got, map[string]int{"client": 0, "sentinel": 12, "agent": 34}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := parseCPUPids(""); err != nil || !maps.Equal(got, map[string]int{"client": 0}) {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"sentinel", "=12", "sentinel=x", "sentinel=0", "sentinel=-3"} {
		if _, err := parseCPUPids(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
