package main

import (
	"context"
	"io"
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
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout := os.Stdout
		os.Stdout = w
		runErr := runWelcome(context.Background(), []string{"-init-key", path})
		os.Stdout = stdout
		w.Close()
		out, _ := io.ReadAll(r)
		if runErr != nil {
			t.Fatalf("fame welcome -init-key: %v", runErr)
		}
		return strings.TrimSpace(string(out))
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
