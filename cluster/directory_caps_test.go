package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestBoundCaps: a directory entry carries at most MaxReplicaCaps capability names, sorted and
// distinct, none longer than MaxCapLen, however many a provider advertises.
func TestBoundCaps(t *testing.T) {
	if got := BoundCaps([]string{"b", "a", "b", "", strings.Repeat("x", MaxCapLen+1)}); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("BoundCaps = %q, want [a b]", got)
	}
	many := make([]string, 0, 3*MaxReplicaCaps)
	for i := range 3 * MaxReplicaCaps {
		many = append(many, fmt.Sprintf("cap.%04d", i))
	}
	got := BoundCaps(many)
	if len(got) != MaxReplicaCaps || got[0] != "cap.0000" || !slices.IsSorted(got) {
		t.Fatalf("BoundCaps of %d names: %d, first %q", len(many), len(got), got[0])
	}
	if BoundCaps(nil) != nil {
		t.Fatal("BoundCaps(nil) not nil")
	}
}
