package security

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestParseJWK(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"ed25519 sig", `{"crv":"Ed25519","x":"YAQXVSUltLsttBkLcQiRtqbMT6Nkl36WgEgB-RD5-Vk","kty":"OKP","alg":"EdDSA","use":"sig","kid":"6NBVcdkbDNMsmpta"}`, true},
		{"x25519 enc", `{"crv":"X25519","x":"huA1wlmDaAhkvp7cCA-bVSH-kHjTYnwoOq6M2leRgRI","kty":"OKP","kid":"07L9OlDNtRoBvnEu","use":"enc","alg":"ECDH-ES"}`, true},
		{"with sid/path", `{"crv":"Ed25519","x":"YAQX","kty":"OKP","use":"sig","kid":"k","sid":"s","physical_path":"/p"}`, true},
		{"x5c", `{"crv":"Ed25519","x":"YAQX","kty":"OKP","use":"sig","kid":"k","x5c":["AAAA"]}`, true},
		{"bad x5c", `{"crv":"Ed25519","x":"YAQX","kty":"OKP","use":"sig","kid":"k","x5c":["***"]}`, false},
		{"no kid", `{"crv":"Ed25519","x":"YAQX","kty":"OKP","use":"sig"}`, false},
		{"no use", `{"crv":"Ed25519","x":"YAQX","kty":"OKP","kid":"k"}`, false},
		{"x25519 as sig", `{"crv":"X25519","x":"YAQX","kty":"OKP","use":"sig","kid":"k"}`, false},
		{"ed25519 as enc", `{"crv":"Ed25519","x":"YAQX","kty":"OKP","use":"enc","kid":"k"}`, false},
		{"unknown curve", `{"crv":"P-256","x":"YAQX","kty":"OKP","use":"sig","kid":"k"}`, false},
		{"rsa", `{"kty":"RSA","n":"AQAB","e":"AQAB","use":"sig","kid":"k"}`, true},
		{"rsa missing n", `{"kty":"RSA","e":"AQAB","use":"sig","kid":"k"}`, false},
		{"ec", `{"kty":"EC","crv":"P-256","x":"a","y":"b","use":"sig","kid":"k"}`, true},
		{"unknown kty", `{"kty":"oct","use":"sig","kid":"k"}`, false},
		{"not json", `[`, false},
		{"wrong types", `{"kty":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJWK([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadJWK) {
				t.Fatalf("error not ErrBadJWK: %v", err)
			}
		})
	}
}

func TestJWKShapes(t *testing.T) {
	pub := testSeedKey().Public().(ed25519.PublicKey)
	b, _ := json.Marshal(SigningJWK(pub, "test-sig-kid"))
	if string(b) != `{"kty":"OKP","crv":"Ed25519","x":"ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ","kid":"test-sig-kid","alg":"EdDSA","use":"sig"}` {
		t.Fatalf("sig jwk %s", b)
	}
	x, _ := X25519FromPrivate(fill(0x33, 32))
	b, _ = json.Marshal(EncryptionJWK(x.Public, "enc-kid"))
	if string(b) != `{"kty":"OKP","crv":"X25519","x":"ew1H2TQn-DERYHgcfHM_2J-IlwrvSQ2KoO4ZpMuKGxQ","kid":"enc-kid","use":"enc","alg":"ECDH-ES"}` {
		t.Fatalf("enc jwk %s", b)
	}
	j, err := ParseJWK(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := j.X25519(); err != nil || string(got) != string(x.Public) {
		t.Fatalf("x25519 %v", err)
	}
	if _, err := j.Ed25519(); !errors.Is(err, ErrBadJWK) {
		t.Fatalf("ed25519 from enc key: %v", err)
	}
}

func TestKeyStore(t *testing.T) {
	ks := NewKeyStore(KeyStoreOptions{})
	pub := testSeedKey().Public().(ed25519.PublicKey)
	const path = "/Cb8WVCC4ML5RsFM/client01"
	if err := ks.Add(SigningJWK(pub, "test-sig-kid"), path); err != nil {
		t.Fatal(err)
	}
	enc, _ := NewX25519Key(nil)
	if n, err := ks.AddRaw([]json.RawMessage{mustJSON(t, EncryptionJWK(enc.Public, "e1")), json.RawMessage(`{"kty":"bad"}`)}, path); n != 1 || !errors.Is(err, ErrBadJWK) {
		t.Fatalf("AddRaw n=%d err=%v", n, err)
	}
	env := unsigned(t, a2Data, false)
	if err := (&Signer{Key: testSeedKey(), Kid: "test-sig-kid"}).Sign(env); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(env, false); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Announce shape carries sid and physical_path.
	p, keys, err := ks.KeyAnnounceKeys("test-sig-kid")
	if err != nil || p != path || len(keys) != 1 {
		t.Fatalf("announce %s %v %v", p, keys, err)
	}
	var back JWK
	if err := json.Unmarshal(keys[0], &back); err != nil || back.SID != "2bDFT5akYCfhjCen05Vmym" || back.PhysicalPath != path {
		t.Fatalf("announced %s", keys[0])
	}
	if _, _, err := ks.KeyAnnounceKeys("nope"); !errors.Is(err, ErrUnknownKey) {
		t.Fatal(err)
	}
	if j, ok := ks.EncryptionKey(path); !ok || j.Kid != "e1" {
		t.Fatalf("enc key %v %v", j, ok)
	}

	mismatch := *env
	mismatch.SID = "someoneElse"
	if _, err := ks.Verify(&mismatch, false); !errors.Is(err, ErrSIDMismatch) {
		t.Fatalf("sid mismatch: %v", err)
	}
	// Same (path, use) with a new kid evicts the old key.
	other := ed25519.NewKeyFromSeed(fill(7, 32))
	if err := ks.Add(SigningJWK(other.Public().(ed25519.PublicKey), "new-kid"), path); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(env, false); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("evicted key: %v", err)
	}
	if got := ks.RemovePath(path); got != 2 || ks.Len() != 0 {
		t.Fatalf("RemovePath %d, left %d", got, ks.Len())
	}
	unsignedEnv := unsigned(t, a2Data, false)
	if _, err := ks.Verify(unsignedEnv, false); !errors.Is(err, ErrUnsigned) {
		t.Fatal(err)
	}
}

func TestKeyStoreConcurrent(t *testing.T) {
	ks := NewKeyStore(KeyStoreOptions{})
	pub := testSeedKey().Public().(ed25519.PublicKey)
	env := unsigned(t, a2Data, false)
	if err := (&Signer{Key: testSeedKey(), Kid: "test-sig-kid"}).Sign(env); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				_ = ks.Add(SigningJWK(pub, "test-sig-kid"), "/Cb8WVCC4ML5RsFM/client01")
				_, _ = ks.Verify(env, true)
				ks.Remove("test-sig-kid")
			}
		}()
	}
	wg.Wait()
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplayGuard(t *testing.T) {
	now := time.Unix(0, 0)
	g, err := NewReplayGuard(2, time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		id      string
		replay  bool
	}{
		{0, "a", false},
		{0, "a", true},
		{0, "b", false},
		{59 * time.Second, "a", true},
		{time.Second, "a", false}, // ttl elapsed
		{0, "c", false},           // evicts b (size 2)
		{0, "b", false},
		{0, "", true},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		err := g.Check(s.id)
		if got := errors.Is(err, ErrReplay); got != s.replay {
			t.Fatalf("step %d (%q): replay=%v, want %v (%v)", i, s.id, got, s.replay, err)
		}
	}
	if g.Len() != 2 {
		t.Fatalf("len %d", g.Len())
	}
	if _, err := NewReplayGuard(0, time.Second, nil); err == nil {
		t.Fatal("size 0 accepted")
	}
}

func TestProfiles(t *testing.T) {
	type row struct {
		p                      Profile
		verifies, data, critic bool
		allowsChannel          bool
		level                  Level
		material, authz        string
	}
	rows := []row{
		{ProfileOpen, false, false, false, true, LevelPlaintext, "raw-key", "noop"},
		{ProfileGated, false, false, true, false, LevelPlaintext, "raw-key", "oauth2-gated"},
		{ProfileGatedCallback, false, false, true, false, LevelPlaintext, "raw-key", "oauth2-callback"},
		{ProfileOverlay, true, true, true, false, LevelPlaintext, "raw-key", "oauth2"},
		{ProfileOverlayCallback, true, true, true, false, LevelPlaintext, "raw-key", "oauth2-callback"},
		{ProfileStrictOverlay, true, true, true, true, LevelChannel, "x509-chain", "jwt"},
	}
	for _, r := range rows {
		t.Run(string(r.p), func(t *testing.T) {
			p, err := ParseProfile(" " + string(r.p) + " ")
			if err != nil || p != r.p {
				t.Fatalf("parse: %v %v", p, err)
			}
			if p.VerifiesSignatures() != r.verifies || p.SignsOutbound() != r.verifies || p.KeyExchange() != r.verifies {
				t.Error("verifies/signs/keyexchange")
			}
			if p.RequiresSignature("Data", OriginDownstream) != r.data {
				t.Error("Data signature")
			}
			if p.RequiresSignature("SecureOpen", OriginUpstream) != r.critic {
				t.Error("critical frame")
			}
			if p.RequiresSignature("NodeAttach", OriginDownstream) || p.RequiresSignature("NodeHeartbeat", OriginPeer) || p.RequiresSignature("KeyRequest", OriginLocal) {
				t.Error("exempt frames")
			}
			if p.AllowsEncryption(LevelChannel) != r.allowsChannel || p.AllowsEncryption(LevelSealed) != r.allowsChannel || !p.AllowsEncryption(LevelPlaintext) {
				t.Error("encryption")
			}
			if p.DefaultEncryptionLevel() != r.level || p.SigningMaterial() != r.material || p.AuthorizerProfile() != r.authz {
				t.Error("level/material/authz")
			}
			if p.RequireCertSIDMatch() != (p == ProfileStrictOverlay) {
				t.Error("cert sid match")
			}
		})
	}
	if _, err := ParseProfile("bogus"); !errors.Is(err, ErrBadProfile) {
		t.Fatal(err)
	}
	if p, _ := ParseProfile("OVERLAY"); p != ProfileOverlay {
		t.Fatal("case")
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    Settings
		wantErr error
	}{
		{map[string]string{}, Settings{ProfileOpen, LevelPlaintext}, nil},
		{map[string]string{"FAME_SECURITY_PROFILE": "strict-overlay"}, Settings{ProfileStrictOverlay, LevelChannel}, nil},
		{map[string]string{"FAME_SECURITY_PROFILE": "strict-overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL": "sealed"}, Settings{ProfileStrictOverlay, LevelSealed}, nil},
		{map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL": "channel"}, Settings{ProfileOverlay, LevelPlaintext}, nil},
		{map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL": "chanel"}, Settings{}, ErrBadLevel},
		{map[string]string{"FAME_SECURITY_PROFILE": "x"}, Settings{}, ErrBadProfile},
	}
	for i, tt := range tests {
		got, err := Resolve(tt.env["FAME_SECURITY_PROFILE"], tt.env["FAME_DEFAULT_ENCRYPTION_LEVEL"])
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("%d: got %+v %v, want %+v %v", i, got, err, tt.want, tt.wantErr)
		}
	}
	if Level(9).String() == "" || LevelSealed.String() != "sealed" {
		t.Error("level names")
	}
}
