package stickiness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var corruptAt = time.Date(2026, 12, 4, 5, 6, 7, 8, time.UTC)

const corruptSuffix = ".corrupt-20261204T050607.000000008Z"

// validStore writes a real store with n session bindings and returns its bytes.
func validStore(t *testing.T, n int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "valid.db")
	s := openTestStore(t, path)
	tbl, _ := NewTable(DefaultConfig(), WithStore(s))
	for i := 0; i < n; i++ {
		tbl.Bind(fmt.Sprintf("sid-%05d", i), "R1", 0)
	}
	s.SaveMember("math@*.fame.fabric", "R1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// patchMeta edits both meta pages of a bbolt file (at 0 and one page in)
// and, if fix, recomputes their checksums so that bbolt believes them.
func patchMeta(raw []byte, edit func(meta []byte), fix bool) []byte {
	out := bytes.Clone(raw)
	pageSize := int(binary.LittleEndian.Uint32(out[16+8:]))
	for _, off := range []int{0, pageSize} {
		meta := out[off+16 : off+16+64]
		edit(meta)
		if fix {
			h := fnv.New64a()
			h.Write(meta[:56])
			binary.LittleEndian.PutUint64(meta[56:], h.Sum64())
		}
	}
	return out
}

func TestStoreCorruptFilesRecovered(t *testing.T) {
	valid := validStore(t, 3000)
	pageSize := int(binary.LittleEndian.Uint32(valid[16+8:]))
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	garbagePages := bytes.Clone(valid)
	for i := 2 * pageSize; i < len(garbagePages); i++ {
		garbagePages[i] = byte(rnd.Uint32())
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"two bytes", []byte("xx")},
		{"one page of zeros", make([]byte, 4096)},
		{"random bytes", random},
		{"text", bytes.Repeat([]byte("not a bbolt file! "), 2000)},
		{"truncated to half", valid[:len(valid)/2]},
		{"truncated to the meta pages", valid[:2*pageSize]},
		{"truncated mid meta", valid[:pageSize+100]},
		{"bad magic", patchMeta(valid, func(m []byte) { copy(m, "BAD!") }, false)},
		{"bad magic, checksum fixed", patchMeta(valid, func(m []byte) { copy(m, "BAD!") }, true)},
		{"wrong version", patchMeta(valid, func(m []byte) { binary.LittleEndian.PutUint32(m[4:], 7) }, true)},
		{"wrong page size 512", patchMeta(valid, func(m []byte) { binary.LittleEndian.PutUint32(m[8:], 512) }, true)},
		{"wrong page size 64 KiB", patchMeta(valid, func(m []byte) { binary.LittleEndian.PutUint32(m[8:], 64<<10) }, true)},
		{"checksum mismatch", patchMeta(valid, func(m []byte) { m[40]++ }, false)},
		{"high water mark past the end", patchMeta(valid, func(m []byte) { binary.LittleEndian.PutUint64(m[40:], 1<<20) }, true)},
		{"root bucket page out of range", patchMeta(valid, func(m []byte) { binary.LittleEndian.PutUint64(m[16:], 1<<40) }, true)},
		{"freelist page out of range", patchMeta(valid, func(m []byte) { binary.LittleEndian.PutUint64(m[32:], 1<<40) }, true)},
		{"meta pages xored", func() []byte {
			b := bytes.Clone(valid)
			for i := 0; i < 2*pageSize; i++ {
				b[i] ^= 0x5a
			}
			return b
		}()},
		{"data pages garbage", garbagePages},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "sticky.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			// Strict open: a typed error, no panic, the file untouched.
			if s, err := OpenStore(path, nil); !errors.Is(err, ErrCorruptStore) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("OpenStore: err = %v, want ErrCorruptStore", err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.data) {
				t.Fatal("strict open changed the file")
			}
			// Recovering open: moved aside byte for byte, counted, fresh store usable.
			s, err := OpenStoreWith(path, StoreOptions{RecoverCorrupt: true, Now: func() time.Time { return corruptAt }})
			if err != nil {
				t.Fatalf("recovering open: %v", err)
			}
			if s.Corrupt() != 1 || s.MovedAside() != path+corruptSuffix {
				t.Fatalf("corrupt=%d moved to %q", s.Corrupt(), s.MovedAside())
			}
			if got, err := os.ReadFile(path + corruptSuffix); err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("moved-aside file differs from the corrupt one (err %v)", err)
			}
			checkUsable(t, s, path)
		})
	}
}

// checkUsable binds through s, closes it, reopens the file and expects the
// binding back.
func checkUsable(t *testing.T, s *Store, path string) {
	t.Helper()
	bs, err := s.Load()
	if err != nil || len(bs) != 0 {
		t.Fatalf("fresh store: %d bindings, %v", len(bs), err)
	}
	tbl, _ := NewTable(DefaultConfig(), WithStore(s))
	tbl.Bind("after", "R9", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, path)
	defer s2.Close()
	tbl2, _ := NewTable(DefaultConfig())
	if n, _, err := tbl2.RestoreFrom(s2); err != nil || n != 1 {
		t.Fatalf("restored %d, %v", n, err)
	}
	if r, ok := tbl2.Lookup("after"); !ok || r != "R9" {
		t.Fatalf("after reopen: %q %v", r, ok)
	}
}

// A zero-byte file is what a crash between create and first write leaves:
// bbolt initialises it in place, nothing is lost, nothing is set aside.
func TestStoreZeroByteFileInitialised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sticky.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStoreWith(path, StoreOptions{RecoverCorrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Corrupt() != 0 || s.MovedAside() != "" {
		t.Fatalf("corrupt=%d moved=%q", s.Corrupt(), s.MovedAside())
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("set aside: %v", m)
	}
	checkUsable(t, s, path)
}

// A valid bbolt file with undecodable records: the file is copied aside as it
// was, counted once, the bad records are deleted and the good ones kept.
func TestStoreGarbageRecords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sticky.db")
	exp := corruptAt.Add(time.Hour).Format(time.RFC3339Nano)
	good := fmt.Sprintf(`{"clientSid":"x","replica":"R1","ttl":3600000000000,"expires":%q}`, exp)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		ss, _ := tx.CreateBucket(bucketSessions)
		cs, _ := tx.CreateBucket(bucketChannels)
		ms, _ := tx.CreateBucket(bucketMembers)
		put := func(b *bolt.Bucket, k, v string) {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		put(ss, "good-1", good)
		put(ss, "good-2", good)
		put(cs, "cid-good", good)
		put(ss, "not-json", "\x00\xff{{")
		put(ss, "empty", "")
		put(ss, "no-replica", fmt.Sprintf(`{"ttl":1,"expires":%q}`, exp))
		put(ss, "negative-ttl", fmt.Sprintf(`{"replica":"R1","ttl":-5,"expires":%q}`, exp))
		put(ss, "no-expiry", `{"replica":"R1","ttl":5}`)
		put(ss, "wrong-types", `{"replica":7,"ttl":"x","expires":true}`)
		put(cs, "cid-bad", `[1,2,3]`)
		if _, err := ss.CreateBucket([]byte("nested-bucket")); err != nil {
			t.Fatal(err)
		}
		put(ms, "math@*.fame.fabric\x00R1", "")
		put(ms, "no-separator", "")
		put(ms, "\x00leading", "")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := countKeys(t, path)

	s, err := OpenStoreWith(path, StoreOptions{RecoverCorrupt: true, Now: func() time.Time { return corruptAt }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.MovedAside() != "" {
		t.Fatal("a readable file was moved aside at open")
	}
	bs, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, b := range bs {
		keys[b.ClientSID+"|"+b.ChannelID] = true
	}
	if len(bs) != 3 || !keys["good-1|"] || !keys["good-2|"] || !keys["x|cid-good"] {
		t.Fatalf("loaded %v", bs)
	}
	st := s.Stats()
	if st.Corrupt != 1 || st.DeletedBad != 10 {
		t.Fatalf("stats %+v, want corrupt 1, 10 undecodable deleted", st)
	}
	if n := countKeys(t, path+corruptSuffix); n != before {
		t.Fatalf("copy holds %d keys; the file had %d", n, before)
	}
	// The live file now holds the good records only, and a second Load
	// finds nothing more to set aside.
	if _, err := s.Load(); err != nil || s.Corrupt() != 1 {
		t.Fatalf("second load: corrupt=%d err=%v", s.Corrupt(), err)
	}
	if m, _ := s.Members(); len(m["math@*.fame.fabric"]) != 1 {
		t.Fatalf("members %v", m)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, path); n != 4 {
		t.Fatalf("live file holds %d keys, want the 4 good ones", n)
	}
}

// countKeys opens a closed store file read-only and counts keys in all buckets.
func countKeys(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			n += b.Stats().KeyN
			return nil
		})
	})
	return n
}

// Two sentinels on one store is an operator error: the second fails fast
// with ErrStoreLocked, and the file is neither moved nor touched.
func TestStoreLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sticky.db")
	s1 := openTestStore(t, path)
	defer s1.Close()
	s1.SaveMember("p", "r")
	if err := s1.Flush(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStoreWith(path, StoreOptions{RecoverCorrupt: true, LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrStoreLocked) || errors.Is(err, ErrCorruptStore) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("err = %v, want ErrStoreLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error does not name the file: %v", err)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("locked file set aside: %v", m)
	}
	if m, err := s1.Members(); err != nil || len(m["p"]) != 1 {
		t.Fatalf("first store after the refused open: %v %v", m, err)
	}
}

// What is not a regular file is a configuration error, never moved aside.
func TestStoreNotARegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sticky.db")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStoreWith(path, StoreOptions{RecoverCorrupt: true})
	if err == nil || errors.Is(err, ErrCorruptStore) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("err = %v", err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Fatal("directory was moved")
	}
}
