package admit

import (
	"os"
	"strings"
	"testing"
	"time"
)

func FuzzParseWelcome(f *testing.F) {
	for _, name := range []string{"testdata/welcome-a6.json", "testdata/welcome-camel.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":"1.0","id":"x","frame":{"type":"NodeWelcome","systemId":"n","connectionGrants":[{"type":"WebSocketConnectionGrant","url":"ws://a","auth":{"type":"NoAuth"}}]}}`))
	f.Add([]byte(`{"version":"1.0","id":"x","frame":{"type":"NodeReject","reason":"r"}}`))
	now := time.Unix(1_767_222_000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseWelcome(b, now)
		if err != nil {
			if g != nil {
				t.Fatal("grant with error")
			}
			return
		}
		if g.SystemID == "" || g.ExpiresAt.IsZero() {
			t.Fatalf("accepted grant without system id or expiry: %+v", g)
		}
		if g.AttachURL != "" && !strings.HasPrefix(g.AttachURL, "ws://") && !strings.HasPrefix(g.AttachURL, "wss://") {
			t.Fatalf("attach URL %q", g.AttachURL)
		}
		if g.CAURL != "" && !strings.HasPrefix(g.CAURL, "http://") && !strings.HasPrefix(g.CAURL, "https://") {
			t.Fatalf("CA URL %q", g.CAURL)
		}
		for _, tok := range []string{g.AttachToken, g.CAToken} {
			if checkTokenChars("token", tok) != nil {
				t.Fatalf("header-unsafe token %q accepted", tok)
			}
		}
	})
}

func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a.b.c","token_type":"Bearer","expires_in":3600,"scope":"node.connect"}`))
	f.Add([]byte(`{"access_token":"x","expires_in":"1e3"}`))
	f.Add([]byte(`{"access_token":"eyJhbGciOiJFZERTQSJ9.eyJleHAiOjE3OTU0MTA1MDEuMjY3MzQ5LCJpYXQiOjE3OTU0MDY5MDF9.c2ln"}`))
	start := time.Unix(1_767_222_000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, exp, err := parseTokenResponse(b, start)
		if err != nil {
			return
		}
		if tok == "" || checkTokenChars("t", tok) != nil || exp.IsZero() {
			t.Fatalf("accepted %q exp %v", tok, exp)
		}
	})
}
