package stickiness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk layout (go.etcd.io/bbolt internal/common, format version 2):
// a page starts with a 16-byte header (id u64, flags u16, count u16,
// overflow u32); pages 0 and 1 hold a meta (magic u32, version u32,
// pageSize u32, flags u32, root bucket {root u64, sequence u64},
// freelist u64, high water mark u64, txid u64, checksum u64 = FNV-64a of
// the 56 bytes before it).
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltHeader       = 16
	boltMetaLen      = 64
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0)
)

type boltMeta struct {
	pageSize            uint32
	root, freelist, hwm uint64
	txid                uint64
	valid               bool
}

func readMeta(b []byte) boltMeta {
	m := boltMeta{
		pageSize: binary.LittleEndian.Uint32(b[8:]),
		root:     binary.LittleEndian.Uint64(b[16:]),
		freelist: binary.LittleEndian.Uint64(b[32:]),
		hwm:      binary.LittleEndian.Uint64(b[40:]),
		txid:     binary.LittleEndian.Uint64(b[48:]),
	}
	h := fnv.New64a()
	h.Write(b[:56])
	m.valid = binary.LittleEndian.Uint32(b[0:]) == boltMagic && binary.LittleEndian.Uint32(b[4:]) == boltVersion &&
		binary.LittleEndian.Uint64(b[56:]) == h.Sum64()
	return m
}

// precheck reads the meta pages and the freelist page of an existing,
// non-empty file with plain reads and refuses what bbolt's Open would panic
// or fault on: it panics there while holding an mmap of the file, which
// keeps the file's lock until the process exits, so such a file must never
// reach bolt.Open. Deeper damage is found by verify, after Open, where a
// panic can still be cleaned up by closing the DB.
func precheck(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil // bbolt initialises an empty file
	}
	at := func(off int64, n int) ([]byte, error) {
		b := make([]byte, n)
		if off < 0 || off+int64(n) > size {
			return nil, fmt.Errorf("read of %d bytes at %d past the end (%d bytes)", n, off, size)
		}
		if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return b, nil
	}
	metaAt := func(off int64) boltMeta {
		b, err := at(off+boltHeader, boltMetaLen)
		if err != nil {
			return boltMeta{}
		}
		return readMeta(b)
	}
	// The page size comes from the first valid meta (meta 1 sits one page in,
	// so look for it at every plausible page size when meta 0 is damaged).
	m0 := metaAt(0)
	ps := int64(m0.pageSize)
	if !m0.valid {
		ps = 0
		for s := int64(1024); s <= 65536; s *= 2 {
			if m := metaAt(s); m.valid && int64(m.pageSize) == s {
				ps = s
				break
			}
		}
	}
	if ps < 1024 || ps > 65536 || ps&(ps-1) != 0 {
		return fmt.Errorf("no valid meta page with a sane page size (got %d)", ps)
	}
	// As bbolt: the valid meta with the higher txid wins; pages are
	// addressed with ps whatever that meta says.
	m0, m1 := metaAt(0), metaAt(ps)
	m := m0
	if m1.valid && (!m0.valid || m1.txid > m0.txid) {
		m = m1
	}
	if !m.valid {
		return errors.New("both meta pages invalid")
	}
	pages := uint64(size / ps)
	switch {
	case m.hwm < 3 || m.hwm > pages:
		return fmt.Errorf("truncated or damaged: meta claims %d pages of %d bytes, file holds %d", m.hwm, ps, pages)
	case m.root < 2 || m.root >= m.hwm:
		return fmt.Errorf("root bucket page %d outside [2, %d)", m.root, m.hwm)
	}
	if m.freelist == boltNoFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.hwm {
		return fmt.Errorf("freelist page %d outside [2, %d)", m.freelist, m.hwm)
	}
	hdr, err := at(int64(m.freelist)*ps, boltHeader+8)
	if err != nil {
		return fmt.Errorf("freelist page: %w", err)
	}
	id, flags := binary.LittleEndian.Uint64(hdr), binary.LittleEndian.Uint16(hdr[8:])
	count, overflow := uint64(binary.LittleEndian.Uint16(hdr[10:])), uint64(binary.LittleEndian.Uint32(hdr[12:]))
	idx := uint64(0)
	if count == 0xFFFF {
		idx, count = 1, binary.LittleEndian.Uint64(hdr[boltHeader:])
	}
	span := overflow + 1
	switch {
	case id != m.freelist || flags != boltFreelistFlag:
		return fmt.Errorf("freelist page %d is not a freelist page (id %d, flags %#x)", m.freelist, id, flags)
	case overflow >= m.hwm || m.freelist+overflow >= m.hwm:
		return fmt.Errorf("freelist page %d overflows past the high water mark", m.freelist)
	case count > span*uint64(ps)/8 || boltHeader+(idx+count)*8 > span*uint64(ps):
		return fmt.Errorf("freelist page %d claims %d ids, more than it can hold", m.freelist, count)
	}
	return nil
}
