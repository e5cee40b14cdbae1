package stickiness

import (
	"errors"
	"testing"
	"time"

	"github.com/fame-go/fame/security/aft"
)

// TestLearnAFTConfirmedStopsBinding: the confirm callback sees the verified claims and its
// error stops the binding.
func TestLearnAFTConfirmedStopsBinding(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SecurityLevel = aft.LevelSignedOptional
	tb, err := NewTable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := aft.Unsigned("", "r", "client", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("not yours")
	var seen aft.Claims
	if err := tb.LearnAFTConfirmed(tok, "r", "replica1", nil, now, func(c aft.Claims) error { seen = c; return stop }); !errors.Is(err, stop) {
		t.Fatalf("err %v, want the confirm error", err)
	}
	if seen.ClientSID != "client" {
		t.Fatalf("confirm saw %+v", seen)
	}
	if _, ok := tb.Lookup("client"); ok {
		t.Fatal("bound although confirm refused")
	}
	if err := tb.LearnAFTConfirmed(tok, "r", "replica1", nil, now, func(aft.Claims) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if r, ok := tb.Lookup("client"); !ok || r != "replica1" {
		t.Fatalf("lookup %q %v", r, ok)
	}
}
