package stickiness

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeRecord: any bytes under any key decode to a valid Binding or an
// errBadRecord, never a panic; what decodes re-encodes to the same Binding.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(false, []byte("sid"), []byte(`{"clientSid":"sid","replica":"R1","ttl":3600000000000,"expires":"2026-12-04T05:00:00Z"}`))
	f.Add(true, []byte("cid"), []byte(`{"clientSid":"sid","channelId":"x","replica":"R1","ttl":1,"expires":"2026-12-04T05:00:00.123456789+02:00"}`))
	f.Add(false, []byte("k"), []byte(`{"replica":"","ttl":-1}`))
	f.Add(false, []byte(""), []byte(`{}`))
	f.Add(true, []byte("k"), []byte("\xff\x00"))
	f.Add(false, []byte("k"), []byte(`{"replica":"R","ttl":1e300,"expires":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, channel bool, key, v []byte) {
		k := kindSession
		if channel {
			k = kindChannel
		}
		b, err := decodeRecord(k, key, v)
		if err != nil {
			if !errors.Is(err, errBadRecord) {
				t.Fatalf("error %v does not wrap errBadRecord", err)
			}
			return
		}
		if b.Replica == "" || b.TTL < 0 || b.TTL > maxRecordTTL || b.Expires.IsZero() {
			t.Fatalf("accepted an invalid record: %+v", b)
		}
		if channel && b.ChannelID != string(key) || !channel && b.ClientSID != string(key) {
			t.Fatalf("key not applied: %+v", b)
		}
		enc, err := encodeRecord(b)
		if err != nil {
			return // e.g. a year json cannot write; the store never produces one
		}
		b2, err := decodeRecord(k, key, enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !b2.Expires.Equal(b.Expires) {
			t.Fatalf("expiry changed: %v -> %v", b.Expires, b2.Expires)
		}
		b2.Expires = b.Expires
		if !reflect.DeepEqual(b, b2) {
			t.Fatalf("round trip: %+v -> %+v", b, b2)
		}
	})
}

// FuzzOpenStore: whatever the file holds, a recovering open yields a usable
// store (the original moved aside when unreadable) and Load does not panic.
func FuzzOpenStore(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.db")
	s, err := OpenStore(seed, nil)
	if err != nil {
		f.Fatal(err)
	}
	tbl, _ := NewTable(DefaultConfig(), WithStore(s))
	for _, sid := range []string{"a", "b", "c"} {
		tbl.Bind(sid, "R1", 0)
	}
	tbl.BindChannel("cid", "a", "R1")
	s.SaveMember("math@*.fame.fabric", "R1")
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	valid, _ := os.ReadFile(seed)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "s.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenStoreWith(path, StoreOptions{RecoverCorrupt: true, DiskSweep: -1, LockTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("recovering open: %v", err)
		}
		defer s.Close()
		if _, err := s.Load(); err != nil {
			t.Fatalf("load: %v", err)
		}
		if err := s.SweepDisk(); err != nil {
			t.Fatal(err)
		}
		s.SaveMember("p", "r")
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Members(); err != nil || len(m["p"]) != 1 {
			t.Fatalf("store not usable: %v %v", m, err)
		}
	})
}
