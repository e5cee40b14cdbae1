package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// captureStdout runs f with os.Stdout redirected and returns what it printed.
func captureStdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	ferr := f()
	os.Stdout = old
	w.Close()
	b, _ := io.ReadAll(r)
	return string(b), ferr
}

// TestTokenPrintsAnAccessToken: `fame token` runs the client-credentials grant of the node
// admission variables against a real `fame oauth2` and prints the access token; a refused
// secret and a profile without credentials are errors naming the cause.
func TestTokenPrintsAnAccessToken(t *testing.T) {
	t.Setenv("FAME_JWT_ISSUER", "http://oauth2.test")
	t.Setenv("FAME_JWT_CLIENT_ID", "c1")
	t.Setenv("FAME_JWT_CLIENT_SECRET", "s1")
	addr, _ := startService(t, runOAuth2)
	t.Setenv("FAME_ADMISSION_PROFILE", "direct")
	t.Setenv("FAME_DIRECT_ADMISSION_URL", "ws://127.0.0.1:1/fame/v1/attach/ws/downstream")
	t.Setenv("FAME_ADMISSION_TOKEN_URL", "http://"+addr+"/oauth/token")
	t.Setenv("FAME_ADMISSION_CLIENT_ID", "c1")
	t.Setenv("FAME_ADMISSION_CLIENT_SECRET", "s1")
	out, err := captureStdout(t, func() error { return runToken(context.Background(), nil) })
	if err != nil {
		t.Fatal(err)
	}
	if tok := strings.TrimSpace(out); strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("printed %q, want one JWT", out)
	}

	t.Setenv("FAME_ADMISSION_CLIENT_SECRET", "wrong")
	if _, err := captureStdout(t, func() error { return runToken(context.Background(), nil) }); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong secret: %v", err)
	}
	t.Setenv("FAME_ADMISSION_PROFILE", "open")
	if _, err := captureStdout(t, func() error { return runToken(context.Background(), nil) }); err == nil || !strings.Contains(err.Error(), "no OAuth2 client credentials") {
		t.Fatalf("open profile: %v", err)
	}
}
