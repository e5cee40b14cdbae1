package stickiness

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestVerifyAFTRefusesDuplicateMembers: a claim set that names client_sid twice (exactly, or
// in another case, which encoding/json matches too) has no single meaning and is malformed,
// whatever the level; the same token without the duplicate verifies.
func TestVerifyAFTRefusesDuplicateMembers(t *testing.T) {
	now := time.Now()
	exp := now.Add(time.Hour).Unix()
	enc := base64.RawURLEncoding
	hdr := enc.EncodeToString([]byte(`{"alg":"none","kid":""}`))
	mk := func(claims string) string { return hdr + "." + enc.EncodeToString([]byte(claims)) + "." }
	ok := mk(fmt.Sprintf(`{"sid":"r","exp":%d,"scp":"node","client_sid":"victim"}`, exp))
	if c, err := VerifyAFT(ok, "r", LevelSignedOptional, nil, now); err != nil || c.ClientSID != "victim" {
		t.Fatalf("plain token: %+v %v", c, err)
	}
	for _, claims := range []string{
		`{"sid":"r","exp":%d,"scp":"node","client_sid":"victim","client_sid":null}`,
		`{"sid":"r","exp":%d,"scp":"node","client_sid":"victim","CLIENT_SID":null}`,
		`{"sid":"r","exp":%d,"scp":"node","client_sid":"victim","client_ſid":null}`,
		`{"sid":"r","sid":"x","exp":%d}`,
	} {
		_, err := VerifyAFT(mk(fmt.Sprintf(claims, exp)), "r", LevelSignedOptional, nil, now)
		if ReasonOf(err) != ReasonMalformed || !errors.Is(err, errDuplicateKey) {
			t.Fatalf("%s: err %v (reason %q), want malformed duplicate", claims, err, ReasonOf(err))
		}
	}
	dupHdr := enc.EncodeToString([]byte(`{"alg":"none","kid":"a","kid":"b"}`)) + "." + enc.EncodeToString([]byte(fmt.Sprintf(`{"sid":"r","exp":%d}`, exp))) + "."
	if _, err := VerifyAFT(dupHdr, "r", LevelSignedOptional, nil, now); !errors.Is(err, errDuplicateKey) {
		t.Fatalf("duplicate header kid: %v", err)
	}
}

// TestLearnAFTConfirmedStopsBinding: the confirm callback sees the verified claims and its
// error stops the binding.
func TestLearnAFTConfirmedStopsBinding(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SecurityLevel = LevelSignedOptional
	tb, err := NewTable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := UnsignedAFT("", "r", "client", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("not yours")
	var seen AFTClaims
	if err := tb.LearnAFTConfirmed(tok, "r", "replica1", nil, now, func(c AFTClaims) error { seen = c; return stop }); !errors.Is(err, stop) {
		t.Fatalf("err %v, want the confirm error", err)
	}
	if seen.ClientSID != "client" {
		t.Fatalf("confirm saw %+v", seen)
	}
	if _, ok := tb.Lookup("client"); ok {
		t.Fatal("bound although confirm refused")
	}
	if err := tb.LearnAFTConfirmed(tok, "r", "replica1", nil, now, func(AFTClaims) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if r, ok := tb.Lookup("client"); !ok || r != "replica1" {
		t.Fatalf("lookup %q %v", r, ok)
	}
}
