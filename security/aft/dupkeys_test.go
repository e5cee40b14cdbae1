package aft

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
	if c, err := Verify(ok, "r", LevelSignedOptional, nil, now); err != nil || c.ClientSID != "victim" {
		t.Fatalf("plain token: %+v %v", c, err)
	}
	for _, claims := range []string{
		`{"sid":"r","exp":%d,"scp":"node","client_sid":"victim","client_sid":null}`,
		`{"sid":"r","exp":%d,"scp":"node","client_sid":"victim","CLIENT_SID":null}`,
		`{"sid":"r","exp":%d,"scp":"node","client_sid":"victim","client_ſid":null}`,
		`{"sid":"r","sid":"x","exp":%d}`,
	} {
		_, err := Verify(mk(fmt.Sprintf(claims, exp)), "r", LevelSignedOptional, nil, now)
		if ReasonOf(err) != ReasonMalformed || !errors.Is(err, errDuplicateKey) {
			t.Fatalf("%s: err %v (reason %q), want malformed duplicate", claims, err, ReasonOf(err))
		}
	}
	dupHdr := enc.EncodeToString([]byte(`{"alg":"none","kid":"a","kid":"b"}`)) + "." + enc.EncodeToString([]byte(fmt.Sprintf(`{"sid":"r","exp":%d}`, exp))) + "."
	if _, err := Verify(dupHdr, "r", LevelSignedOptional, nil, now); !errors.Is(err, errDuplicateKey) {
		t.Fatalf("duplicate header kid: %v", err)
	}
}
