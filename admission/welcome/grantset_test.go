package welcome

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestGrantSet: the exported view answers as the welcome service's own policy does, and a
// caller cannot change the grants through what Lookup returns.
func TestGrantSet(t *testing.T) {
	gs, err := ParseGrants("sub=r system_ids=math-replica* logicals=*.fame.fabric; sub=c system_ids=*; sub=s system_ids=S1")
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewGrantSet(gs, "S1")
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 3 {
		t.Fatalf("Len %d", set.Len())
	}
	for _, tc := range []struct {
		sub, id string
		want    bool
	}{
		{"r", "math-replica1", true},
		{"r", "agent", false},
		{"c", "agent", true},
		{"c", "math-replica1", false}, // reserved for r
		{"c", "MATH-REPLICA1", false}, // reserved ignoring case
		{"c", "S1", false},            // the target only by exact name
		{"s", "S1", true},
		{"nobody", "agent", false},
	} {
		if got := set.AllowsID(tc.sub, tc.id); got != tc.want {
			t.Errorf("AllowsID(%q, %q) = %v, want %v", tc.sub, tc.id, got, tc.want)
		}
	}
	g, ok := set.Lookup("r")
	if !ok || !slices.Equal(g.Logicals, []string{"*.fame.fabric"}) {
		t.Fatalf("Lookup(r) = %+v %v", g, ok)
	}
	g.Logicals[0], g.SystemIDs[0] = "*", "*"
	if g2, _ := set.Lookup("r"); g2.Logicals[0] != "*.fame.fabric" || !set.AllowsID("r", "math-replica2") || set.AllowsID("r", "agent") {
		t.Fatal("Lookup returned the set's own slices")
	}
	if _, ok := set.Lookup("nobody"); ok {
		t.Fatal("Lookup of an unknown subject")
	}
	if _, err := NewGrantSet([]ClientGrant{{Subject: "a", SystemIDs: []string{"*"}, Logicals: []string{"*"}}}, "S1"); !errors.Is(err, ErrGrantWildcard) {
		t.Fatalf("logical * accepted: %v", err)
	}
}

func TestLoadGrantsNamesTheVariable(t *testing.T) {
	_, err := LoadGrants(func(k string) string {
		return map[string]string{"FAME_X_GRANTS": "sub=a bogus=1"}[k]
	}, "FAME_X_GRANTS")
	if !errors.Is(err, ErrGrantSyntax) || !strings.HasPrefix(err.Error(), "FAME_X_GRANTS:") {
		t.Fatalf("err %v", err)
	}
	_, err = LoadGrants(func(k string) string {
		return map[string]string{"FAME_X_GRANTS_FILE": "/nonexistent/grants"}[k]
	}, "FAME_X_GRANTS")
	if err == nil || !strings.HasPrefix(err.Error(), "FAME_X_GRANTS_FILE:") {
		t.Fatalf("err %v", err)
	}
}
