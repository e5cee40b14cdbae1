package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWelcomeInitKey: -init-key creates the shared ticket key once (mode 0600) and prints its
// kid; a second run reads the same key, so welcome services started on it sign alike.
func TestWelcomeInitKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "welcome", "ticket.key")
	kid := func() string {
		t.Helper()
		out, err := captureStdout(t, func() error { return runWelcome(context.Background(), []string{"-init-key", path}) })
		if err != nil {
			t.Fatalf("fame welcome -init-key: %v", err)
		}
		return strings.TrimSpace(out)
	}
	first, second := kid(), kid()
	if first == "" || first != second {
		t.Fatalf("kids %q then %q, want the same non-empty kid", first, second)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}
