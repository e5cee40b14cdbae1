package stickiness

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketCounts counts the keys of an open store's buckets.
func bucketCounts(t *testing.T, s *Store) (sessions, channels, members int) {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		sessions = tx.Bucket(bucketSessions).Stats().KeyN
		channels = tx.Bucket(bucketChannels).Stats().KeyN
		members = tx.Bucket(bucketMembers).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return
}

// Churning many short-lived sessions leaves neither records nor file growth
// behind: the table's expiry deletes them from disk.
func TestStoreChurnBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	clk := &fakeClock{t: time.Unix(1735689600, 0)}
	s, err := OpenStoreWith(path, StoreOptions{Now: clk.now, DiskSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tbl, _ := NewTable(Config{Enabled: true, DefaultTTL: time.Minute, CacheMax: 2000}, WithClock(clk.now), WithStore(s))
	const rounds, perRound = 40, 1000
	var sizeAfterWarmup int64
	for r := 0; r < rounds; r++ {
		for i := 0; i < perRound; i++ {
			sid := fmt.Sprintf("r%02d-sid-%04d", r, i)
			tbl.Bind(sid, fmt.Sprintf("R%d", i%3), 0)
			if i%10 == 0 {
				tbl.BindChannel("cid-"+sid, sid, fmt.Sprintf("R%d", i%3))
			}
		}
		if ns, nc, _ := bucketCounts(t, s); ns != perRound || nc != perRound/10 {
			t.Fatalf("round %d: %d sessions, %d channels on disk; want only this round's", r, ns, nc)
		}
		clk.add(2 * time.Minute)
		tbl.Sweep()
		if r == 3 {
			sizeAfterWarmup, _ = s.FileSize()
		}
	}
	ns, nc, _ := bucketCounts(t, s)
	size, _ := s.FileSize()
	t.Logf("after %d sessions: %d session and %d channel records, file %d bytes (%d after 4 rounds)",
		rounds*perRound, ns, nc, size, sizeAfterWarmup)
	if ns != 0 || nc != 0 {
		t.Fatalf("%d sessions, %d channels left on disk after all expired", ns, nc)
	}
	// 44,000 records of ~150 bytes would be ~6 MiB; bbolt reuses freed pages.
	if size > 2*sizeAfterWarmup+(256<<10) {
		t.Fatalf("file grew from %d to %d bytes", sizeAfterWarmup, size)
	}
}

// Records whose delete never reached the file (here: the store was detached
// while the table expired them) are removed by the disk sweep once they can
// no longer back a live binding; a binding still alive in memory keeps its
// record even though the stored expiry has passed (it lags by up to TTL/2).
func TestStoreDiskSweep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	clk := &fakeClock{t: time.Unix(1735689600, 0)}
	s, err := OpenStoreWith(path, StoreOptions{Now: clk.now, DiskSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tbl, _ := NewTable(Config{Enabled: true, DefaultTTL: time.Minute}, WithClock(clk.now), WithStore(s))
	for i := 0; i < 100; i++ {
		tbl.Bind(fmt.Sprint("lost-", i), "R1", 0)
	}
	tbl.Bind("busy", "R2", 0)
	tbl.BindChannel("cid", "busy", "R2")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	tbl.AttachStore(nil)
	clk.add(20 * time.Second)
	tbl.Lookup("busy") // slides to +80 s in memory; stored expiry stays at +60 s
	tbl.LookupChannel("cid")
	clk.add(45 * time.Second) // +65 s: every stored expiry has passed
	tbl.Sweep()               // the lost-* expire in memory, their deletes go nowhere
	if err := s.SweepDisk(); err != nil {
		t.Fatal(err)
	}
	if ns, nc, _ := bucketCounts(t, s); ns != 101 || nc != 1 {
		t.Fatalf("+65 s: %d sessions, %d channels on disk; the sweep must wait TTL/2 past the stored expiry", ns, nc)
	}
	clk.add(30 * time.Second) // +95 s: past +60 s + 30 s
	if err := s.SweepDisk(); err != nil {
		t.Fatal(err)
	}
	if ns, nc, _ := bucketCounts(t, s); ns != 0 || nc != 0 {
		t.Fatalf("+95 s: %d sessions, %d channels left", ns, nc)
	}
	if st := s.Stats(); st.DeletedExpired != 102 {
		t.Fatalf("deleted %d expired", st.DeletedExpired)
	}
}

// The periodic disk sweep runs on its own (fake time under synctest).
func TestStoreDiskSweepPeriodic(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		s, err := OpenStoreWith(filepath.Join(dir, "s.db"), StoreOptions{DiskSweep: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tbl, _ := NewTable(Config{Enabled: true, DefaultTTL: 10 * time.Second}, WithStore(s))
		for i := 0; i < 50; i++ {
			tbl.Bind(fmt.Sprint("s", i), "R1", 0)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		tbl.AttachStore(nil) // only the disk sweep can delete them now
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if ns, _, _ := bucketCounts(t, s); ns != 0 {
			t.Fatalf("%d records left after a periodic sweep", ns)
		}
	})
}

// Load deletes expired records and the memberships of replicas no live
// binding names; PurgeReplica deletes the memberships of the purged replica.
func TestStoreLoadCleansAndPurgeForgets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	clk := &fakeClock{t: time.Unix(1735689600, 0)}
	open := func() *Store {
		s, err := OpenStoreWith(path, StoreOptions{Now: clk.now, DiskSweep: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	tbl, _ := NewTable(Config{Enabled: true, DefaultTTL: time.Minute}, WithClock(clk.now), WithStore(s))
	for i := 0; i < 10; i++ {
		tbl.Bind(fmt.Sprint("old-", i), "R1", 0)
	}
	clk.add(50 * time.Second)
	tbl.Bind("fresh", "R2", 0)
	tbl.Bind("gone", "R3", 0)
	for _, r := range []string{"R1", "R2", "R3", "R4"} {
		s.SaveMember("math@*.fame.fabric", r)
	}
	s.SaveMember("echo@*.fame.fabric", "R3")
	if err := s.Close(); err != nil { // a shutdown: nothing purged
		t.Fatal(err)
	}
	clk.add(20 * time.Second) // the old-* are 70 s old: expired

	s = open()
	defer s.Close()
	tbl2, _ := NewTable(Config{Enabled: true, DefaultTTL: time.Minute}, WithClock(clk.now))
	n, stored, err := tbl2.RestoreFrom(s)
	if err != nil || n != 2 || stored != 2 {
		t.Fatalf("restored %d of %d, %v", n, stored, err)
	}
	m, _ := s.Members()
	want := map[string][]string{"math@*.fame.fabric": {"R2", "R3"}, "echo@*.fame.fabric": {"R3"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("members after load %v, want %v", m, want)
	}
	if st := s.Stats(); st.DeletedExpired != 10 || st.DeletedMembers != 2 || st.DeletedBad != 0 {
		t.Fatalf("stats %+v", st)
	}
	if ns, _, _ := bucketCounts(t, s); ns != 2 {
		t.Fatalf("%d session records after load", ns)
	}
	tbl2.PurgeReplica("R3")
	tbl2.PurgeReplica("R-never-bound") // no bindings: must still not fail
	ns, _, nm := bucketCounts(t, s)
	m, _ = s.Members()
	if ns != 1 || nm != 1 || !reflect.DeepEqual(m, map[string][]string{"math@*.fame.fabric": {"R2"}}) {
		t.Fatalf("after purge: %d sessions, members %v", ns, m)
	}
}

// LRU evictions while restoring delete the evicted records from the file.
func TestStoreRestoreEvictionsDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTestStore(t, path)
	tbl, _ := NewTable(DefaultConfig(), WithStore(s))
	for i := 0; i < 300; i++ {
		tbl.Bind(fmt.Sprint("s", i), "R1", 0)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path)
	defer s.Close()
	small, _ := NewTable(Config{Enabled: true, CacheMax: 100})
	if n, _, err := small.RestoreFrom(s); err != nil || n != 300 {
		t.Fatalf("restore %d %v", n, err)
	}
	if ns, _, _ := bucketCounts(t, s); ns != 100 {
		t.Fatalf("%d records on disk, want the 100 the table holds", ns)
	}
}
