package stickiness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"
)

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sticky.db")
	s := openTestStore(t, path)
	tbl, err := NewTable(DefaultConfig(), WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		tbl.Bind(fmt.Sprintf("sid-%04d", i), fmt.Sprintf("R%d", i%4), 0)
	}
	for i := 0; i < 100; i++ {
		tbl.BindChannel(fmt.Sprintf("cid-%03d", i), fmt.Sprintf("sid-%04d", i), fmt.Sprintf("R%d", i%4))
	}
	// Purged and unbound bindings must not come back after the restart.
	lost := tbl.PurgeReplica("R3")
	tbl.Unbind("sid-0000")
	s.SaveMember("math@*.fame.fabric", "R1")
	s.SaveMember("math@*.fame.fabric", "R2")
	s.SaveMember("math@*.fame.fabric", "R3")
	s.RemoveMember("math@*.fame.fabric", "R3")
	s.SaveMember("echo@*.fame.fabric", "R1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(lost) != 250 {
		t.Fatalf("lost %d sessions", len(lost))
	}

	s2 := openTestStore(t, path)
	defer s2.Close()
	bs, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	tbl2, _ := NewTable(DefaultConfig())
	if n := tbl2.Restore(bs); n != 749+75 {
		t.Fatalf("restored %d bindings, want %d", n, 749+75)
	}
	for i := 1; i < 1000; i++ {
		r, ok := tbl2.Lookup(fmt.Sprintf("sid-%04d", i))
		want := fmt.Sprintf("R%d", i%4)
		if want == "R3" {
			if ok {
				t.Fatalf("purged sid-%04d restored", i)
			}
			continue
		}
		if !ok || r != want {
			t.Fatalf("sid-%04d -> %q, %v; want %s", i, r, ok, want)
		}
	}
	if _, ok := tbl2.Lookup("sid-0000"); ok {
		t.Fatal("unbound session restored")
	}
	if r, _ := tbl2.LookupChannel("cid-001"); r != "R1" {
		t.Fatalf("channel restored to %q", r)
	}
	m, err := s2.Members()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"math@*.fame.fabric": {"R1", "R2"}, "echo@*.fame.fabric": {"R1"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("members %v", m)
	}
	if s2.Dropped() != 0 {
		t.Fatalf("dropped %d", s2.Dropped())
	}
}

// A session kept alive by lookups must survive a restart even though it was
// bound long before: the table re-persists slid expiries.
func TestStorePersistsSlidingExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sticky.db")
	s := openTestStore(t, path)
	clk := &fakeClock{t: time.Now()}
	tbl, _ := NewTable(Config{Enabled: true, DefaultTTL: time.Minute}, WithClock(clk.now), WithStore(s))
	tbl.Bind("busy", "R1", 0)
	tbl.Bind("idle", "R1", 0)
	for i := 0; i < 10; i++ {
		clk.add(40 * time.Second)
		tbl.Lookup("busy")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	bs, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	var busy Binding
	for _, b := range bs {
		if b.ClientSID == "busy" {
			busy = b
		}
	}
	if busy.Expires.Before(clk.now()) {
		t.Fatalf("stored expiry %v is behind the clock %v", busy.Expires, clk.now())
	}
	tbl2, _ := NewTable(Config{Enabled: true, DefaultTTL: time.Minute}, WithClock(clk.now))
	if n := tbl2.Restore(bs); n != 1 {
		t.Fatalf("restored %d, want only the busy session", n)
	}
	if _, ok := tbl2.Lookup("busy"); !ok {
		t.Fatal("busy session lost across restart")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStoreCorruptFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a bbolt file! "), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	tiny := filepath.Join(dir, "tiny.db")
	if err := os.WriteFile(tiny, []byte("xx"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A real store with its meta pages overwritten.
	broken := filepath.Join(dir, "broken.db")
	s := openTestStore(t, broken)
	s.Close()
	raw, _ := os.ReadFile(broken)
	for i := 0; i < 8192 && i < len(raw); i++ {
		raw[i] ^= 0x5a
	}
	os.WriteFile(broken, raw, 0o600)

	for _, p := range []string{garbage, tiny, broken} {
		s, err := OpenStore(p, nil)
		if !errors.Is(err, ErrCorruptStore) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("%s: err = %v, want ErrCorruptStore", filepath.Base(p), err)
		}
	}
	// A missing directory is created.
	s, err := OpenStore(filepath.Join(dir, "no", "such", "dir.db"), nil)
	if err != nil {
		t.Fatalf("missing directory: %v", err)
	}
	s.Close()
}

func TestStoreClosed(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	s.SaveMember("p", "r")
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d after close", s.Dropped())
	}
	if err := s.Flush(); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("Flush after close: %v", err)
	}
}

// Many changes in quick succession are batched (fewer commits than changes)
// and all land.
func TestStoreBatching(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	defer s.Close()
	tbl, _ := NewTable(DefaultConfig(), WithStore(s))
	for i := 0; i < 5000; i++ {
		tbl.Bind(fmt.Sprint("s", i), "R", 0)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	bs, _ := s.Load()
	keys := make([]string, 0, len(bs))
	for _, b := range bs {
		keys = append(keys, b.ClientSID)
	}
	sort.Strings(keys)
	if len(keys) != 5000 || s.Written() != 5000 {
		t.Fatalf("stored %d, written %d", len(keys), s.Written())
	}
	// At most 1000 changes per commit plus one per 100 ms tick: far fewer
	// transactions than changes.
	if c := s.commits.Load(); c < 5 || c > 50 {
		t.Fatalf("%d commits for 5000 changes", c)
	}
	st := tbl.Stats()
	if st.StoreDropped != 0 {
		t.Fatalf("dropped %d", st.StoreDropped)
	}
}
