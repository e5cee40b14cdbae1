package config

import (
	"strings"
	"testing"
)

// TestRateLimitVars: FAME_RATE_LIMIT_* are read as numbers, and a malformed one is a problem
// naming the variable (never read as "unlimited").
func TestRateLimitVars(t *testing.T) {
	e := SentinelFromEnv(MapEnv(map[string]string{"FAME_RATE_LIMIT_IDENTITY": "2.5", "FAME_RATE_LIMIT_IDENTITY_BURST": "5",
		"FAME_RATE_LIMIT_ADDRESS": "100", "FAME_RATE_LIMIT_ADDRESS_BURST": "200"}))
	if len(e.Problems) > 0 || *e.RateIdentity != 2.5 || *e.RateIdentityBurst != 5 || *e.RateAddress != 100 || *e.RateAddressBurst != 200 {
		t.Fatalf("parsed %+v", e)
	}
	if e := SentinelFromEnv(MapEnv(nil)); e.RateIdentity != nil || e.RateAddress != nil {
		t.Fatal("unset variables read as set")
	}
	for _, name := range []string{"FAME_RATE_LIMIT_IDENTITY", "FAME_RATE_LIMIT_IDENTITY_BURST", "FAME_RATE_LIMIT_ADDRESS", "FAME_RATE_LIMIT_ADDRESS_BURST"} {
		e := SentinelFromEnv(MapEnv(map[string]string{name: "lots"}))
		if len(e.Problems) != 1 || !strings.Contains(e.Problems[0], name) {
			t.Errorf("%s=lots: problems %v", name, e.Problems)
		}
	}
}
