package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/sentinel"
	"github.com/fame-go/fame/stickiness"
)

// A corrupt store file must neither stop the sentinel nor silently turn
// persistence off: it is moved aside, logged, counted, a fresh store is
// opened, and the bindings written to it survive the next restart.
func TestCorruptStoreMovedAsideAndPersistenceOn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bindings.db")
	rnd := rand.New(rand.NewPCG(13, 5))
	garbage := make([]byte, 48<<10)
	for i := range garbage {
		garbage[i] = byte(rnd.Uint32())
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}

	f := newFabric(t, map[string]string{"FAME_NODE_ID": "sentinelA", "FAME_STORAGE_PATH": path})
	moved, _ := filepath.Glob(path + ".corrupt-*")
	if len(moved) != 1 {
		t.Fatalf("corrupt files set aside: %v", moved)
	}
	if b, err := os.ReadFile(moved[0]); err != nil || !bytes.Equal(b, garbage) {
		t.Fatalf("%s does not hold the corrupt file (err %v)", moved[0], err)
	}
	if v := f.metric(t, "fame_store_corrupt_total"); v != 1 {
		t.Fatalf("fame_store_corrupt_total = %v, want 1", v)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "stickiness store is corrupt") ||
		!strings.Contains(logs, "path="+path) || !strings.Contains(logs, "moved_to="+moved[0]) {
		t.Fatalf("no error log naming the file and where it went:\n%s", logs)
	}

	for _, name := range []string{"r1", "r2", "r3"} {
		f.startReplica(name, "*.fame.fabric", nil, nil)
	}
	clients := f.sessions(t, 30, nil)
	before := placement(t, clients, 10) // 10 answers per session, each from one replica
	for i, who := range before {
		if who == "" {
			t.Fatalf("session %d got no answer", i)
		}
	}

	// The fresh store persisted those bindings: after a restart every session
	// is back on its replica, and nothing more is set aside.
	f.restart()
	waitUntil(t, 15*time.Second, "replicas to re-attach", func() bool { return f.poolSize(t, "math@*.fame.fabric") == 3 })
	waitUntil(t, 15*time.Second, "clients to re-attach", func() bool {
		peers, _ := f.stats(t)["peers"].([]any)
		return len(peers) == 3+len(clients)
	})
	after := placement(t, clients, 10)
	for i := range clients {
		if after[i] != before[i] {
			t.Fatalf("session %d moved from %s to %s across the restart", i, before[i], after[i])
		}
	}
	if v := f.metric(t, "fame_store_corrupt_total"); v != 0 {
		t.Fatalf("the fresh store was reported corrupt after the restart (%v)", v)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("corrupt files after restart: %v", m)
	}
}

// Two sentinels on one store is an operator error: the second refuses to
// start, promptly, with an error naming the file, rather than hanging or
// running without persistence.
func TestLockedStoreFailsStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bindings.db")
	holder, err := stickiness.OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	env := map[string]string{"FAME_NODE_ID": "sentinelB", "FAME_STORAGE_PATH": path}
	opts, err := sentinel.LoadOptions("", config.Getenv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := sentinel.New(opts)
	took := time.Since(start)
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatal("sentinel started on a store another process holds")
	}
	t.Logf("refused after %v: %v", took, err)
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("error does not say which file is locked: %v", err)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("a locked store was set aside: %v", m)
	}
}
