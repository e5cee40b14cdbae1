package aft

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type aftVectors struct {
	SeedHex string `json:"seed_hex"`
	PublicX string `json:"public_x"`
	Now     int64  `json:"now"`
	Signed  struct {
		KID, SID, Scope, Token, Header, Claims string
		ClientSID                              string `json:"client_sid"`
		TTLSec                                 int    `json:"ttl_sec"`
	} `json:"signed"`
	Unsigned struct {
		KID, SID, Token string
		TTLSec          int `json:"ttl_sec"`
	} `json:"unsigned"`
}

func loadVectors(t testing.TB) (aftVectors, ed25519.PrivateKey) {
	t.Helper()
	raw, err := os.ReadFile("testdata/aft_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v aftVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	seed, err := hex.DecodeString(v.SeedHex)
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if x := base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)); x != v.PublicX {
		t.Fatalf("public key %s, want %s", x, v.PublicX)
	}
	return v, priv
}

func keysFor(kid string, pub ed25519.PublicKey) KeyLookup {
	return func(k string) (ed25519.PublicKey, bool) {
		if k == kid {
			return pub, true
		}
		return nil, false
	}
}

func TestSignAFTVector(t *testing.T) {
	v, priv := loadVectors(t)
	now := time.Unix(v.Now, 0)
	got, err := Sign(priv, v.Signed.KID, v.Signed.SID, v.Signed.ClientSID, v.Signed.Scope, time.Duration(v.Signed.TTLSec)*time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != v.Signed.Token {
		t.Fatalf("signed AFT mismatch\n got %s\nwant %s", got, v.Signed.Token)
	}
	parts := strings.Split(got, ".")
	for i, want := range []string{v.Signed.Header, v.Signed.Claims} {
		dec, _ := base64.RawURLEncoding.DecodeString(parts[i])
		if string(dec) != want {
			t.Errorf("part %d = %s, want %s", i, dec, want)
		}
	}
	// A longer TTL is capped at 7200 s, giving the same token.
	capped, _ := Sign(priv, v.Signed.KID, v.Signed.SID, v.Signed.ClientSID, v.Signed.Scope, 10*time.Hour, now)
	if capped != v.Signed.Token {
		t.Errorf("ttl not capped at MaxTTL")
	}
}

func TestUnsignedAFTVector(t *testing.T) {
	v, _ := loadVectors(t)
	got, err := Unsigned(v.Unsigned.KID, v.Unsigned.SID, "", time.Duration(v.Unsigned.TTLSec)*time.Second, time.Unix(v.Now, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got != v.Unsigned.Token {
		t.Fatalf("unsigned AFT mismatch\n got %s\nwant %s", got, v.Unsigned.Token)
	}
	// With a client sid we do better than the reference and keep it.
	withClient, _ := Unsigned("k1", "R", "C", time.Minute, time.Unix(v.Now, 0))
	c, err := Verify(withClient, "R", LevelSignedOptional, nil, time.Unix(v.Now, 0))
	if err != nil || c.ClientSID != "C" || c.Signed || c.Scope != ScopeNode {
		t.Fatalf("unsigned with client: %+v, %v", c, err)
	}
}

func TestSignAFTBadInput(t *testing.T) {
	_, priv := loadVectors(t)
	if _, err := Sign(priv[:10], "k", "s", "c", "node", time.Hour, time.Now()); err == nil {
		t.Error("short key accepted")
	}
	if _, err := Sign(priv, "k", "s", "c", "node", 0, time.Now()); err == nil {
		t.Error("zero ttl accepted")
	}
	if _, err := Unsigned("k", "s", "c", -time.Second, time.Now()); err == nil {
		t.Error("negative ttl accepted")
	}
}

// forge builds a token from raw header/claims JSON and a raw signature part.
func forge(header, claims, sig string) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(claims)) + "." + sig
}

func TestVerifyAFT(t *testing.T) {
	v, priv := loadVectors(t)
	now := time.Unix(v.Now, 0)
	pub := priv.Public().(ed25519.PublicKey)
	keys := keysFor(v.Signed.KID, pub)
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	otherKeys := keysFor(v.Signed.KID, otherPriv.Public().(ed25519.PublicKey))
	signed := v.Signed.Token
	unsigned := v.Unsigned.Token
	parts := strings.Split(signed, ".")
	// Claims swapped for a different client: signature no longer matches.
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sid":"REPLICASID","exp":1735696800,"scp":"node","client_sid":"EVIL"}`)) + "." + parts[2]
	floatExp := forge(`{"alg":"none","kid":"k1"}`, `{"sid":"REPLICASID","exp":1735689630.5,"client_sid":"C"}`, "")
	hs256 := forge(`{"alg":"HS256","kid":"replica-sig-kid"}`, `{"sid":"REPLICASID","exp":1735696800}`, "c2ln")
	noneWithSig := forge(`{"alg":"none","kid":"k1"}`, `{"sid":"REPLICASID","exp":1735696800}`, "c2ln")
	noExp := forge(`{"alg":"none","kid":"k1"}`, `{"sid":"REPLICASID"}`, "")
	weirdAlg := forge(`{"alg":"XX1","kid":"k1"}`, `{"sid":"REPLICASID","exp":1735696800}`, "")
	noKid, _ := Sign(priv, "", "REPLICASID", "C", "node", time.Hour, now)

	tests := []struct {
		name   string
		token  string
		sid    string
		level  Level
		keys   KeyLookup
		now    time.Time
		reason Reason // "" = accepted
		client string
		signed bool
	}{
		{"signed strict", signed, "REPLICASID", LevelStrict, keys, now, "", "CLIENTSID", true},
		{"signed optional", signed, "REPLICASID", LevelSignedOptional, keys, now, "", "CLIENTSID", true},
		{"signed last second", signed, "REPLICASID", LevelStrict, keys, time.Unix(1735696799, 0), "", "CLIENTSID", true},
		{"signed at exp", signed, "REPLICASID", LevelStrict, keys, time.Unix(1735696800, 0), ReasonExpired, "", false},
		{"signed wrong sid", signed, "OTHER", LevelStrict, keys, now, ReasonWrongSID, "", false},
		{"signed other key", signed, "REPLICASID", LevelStrict, otherKeys, now, ReasonBadSignature, "", false},
		{"tampered claims", tampered, "REPLICASID", LevelSignedOptional, keys, now, ReasonBadSignature, "", false},
		{"unknown kid", signed, "REPLICASID", LevelStrict, keysFor("nope", pub), now, ReasonUnknownKID, "", false},
		{"nil keys", signed, "REPLICASID", LevelSignedOptional, nil, now, ReasonUnknownKID, "", false},
		{"signed no kid", noKid, "REPLICASID", LevelStrict, keys, now, ReasonUnknownKID, "", false},
		{"unsigned optional", unsigned, "REPLICASID", LevelSignedOptional, nil, now, "", "", false},
		{"unsigned strict", unsigned, "REPLICASID", LevelStrict, keys, now, ReasonAlgNone, "", false},
		{"unsigned unknown level", unsigned, "REPLICASID", Level("bogus"), keys, now, ReasonAlgNone, "", false},
		{"unsigned expired", unsigned, "REPLICASID", LevelSignedOptional, nil, time.Unix(1735689630, 0), ReasonExpired, "", false},
		{"float exp", floatExp, "REPLICASID", LevelSignedOptional, nil, time.Unix(1735689629, 0), "", "C", false}, // fractional seconds are truncated
		{"sid-only signed", signed, "REPLICASID", LevelSIDOnly, keys, now, ReasonSIDOnly, "", false},
		{"sid-only unsigned", unsigned, "REPLICASID", LevelSIDOnly, keys, now, ReasonSIDOnly, "", false},
		{"hs256", hs256, "REPLICASID", LevelSignedOptional, keys, now, ReasonUnsupportedAlg, "", false},
		{"unregistered alg", weirdAlg, "REPLICASID", LevelSignedOptional, keys, now, ReasonUnsupportedAlg, "", false},
		{"none with signature", noneWithSig, "REPLICASID", LevelSignedOptional, keys, now, ReasonMalformed, "", false},
		{"no exp", noExp, "REPLICASID", LevelSignedOptional, keys, now, ReasonMalformed, "", false},
		{"empty", "", "REPLICASID", LevelSignedOptional, keys, now, ReasonMalformed, "", false},
		{"two parts", "a.b", "REPLICASID", LevelSignedOptional, keys, now, ReasonMalformed, "", false},
		{"bad base64", "!!.??.", "REPLICASID", LevelSignedOptional, keys, now, ReasonMalformed, "", false},
		{"huge", strings.Repeat("a", maxTokenLen+1), "REPLICASID", LevelSignedOptional, keys, now, ReasonMalformed, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Verify(tc.token, tc.sid, tc.level, tc.keys, tc.now)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.ClientSID != tc.client || c.Signed != tc.signed || c.SID != tc.sid {
					t.Fatalf("claims %+v", c)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v, want refusal %s", c, tc.reason)
			}
			if got := ReasonOf(err); got != tc.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
			}
			if !errors.Is(err, reasonErr[tc.reason]) {
				t.Fatalf("errors.Is(%v, %v) false", err, reasonErr[tc.reason])
			}
			if c != (Claims{}) {
				t.Fatalf("claims returned with error: %+v", c)
			}
		})
	}
}

func TestVerifiedClaimsFields(t *testing.T) {
	v, priv := loadVectors(t)
	c, err := Verify(v.Signed.Token, "REPLICASID", LevelStrict, keysFor(v.Signed.KID, priv.Public().(ed25519.PublicKey)), time.Unix(v.Now, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{SID: "REPLICASID", ClientSID: "CLIENTSID", Scope: "node", Exp: 1735696800, KID: "replica-sig-kid", Signed: true}
	if c != want {
		t.Fatalf("got %+v want %+v", c, want)
	}
}

func FuzzVerifyAFT(f *testing.F) {
	v, priv := loadVectors(f)
	keys := keysFor(v.Signed.KID, priv.Public().(ed25519.PublicKey))
	f.Add(v.Signed.Token, "REPLICASID")
	f.Add(v.Unsigned.Token, "REPLICASID")
	f.Add("a.b.c", "")
	f.Add(forge(`{"alg":"none"}`, `{"exp":1e300,"sid":null}`, ""), "")
	now := time.Unix(v.Now, 0)
	f.Fuzz(func(t *testing.T, token, sid string) {
		for _, lvl := range []Level{LevelStrict, LevelSignedOptional, LevelSIDOnly} {
			c, err := Verify(token, sid, lvl, keys, now)
			if err != nil {
				if ReasonOf(err) == "" {
					t.Fatalf("error without reason: %v", err)
				}
				continue
			}
			if lvl == LevelSIDOnly {
				t.Fatal("sid-only accepted a token")
			}
			if c.SID != sid || c.Exp < now.Unix() {
				t.Fatalf("accepted inconsistent claims %+v for sid %q", c, sid)
			}
			if lvl == LevelStrict && !c.Signed {
				t.Fatal("strict accepted an unsigned token")
			}
		}
	})
}
