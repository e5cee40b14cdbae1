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
	pc := &pageChecker{f: f, ps: ps, hwm: m.hwm, seen: map[uint64]bool{}}
	if err := pc.tree(m.root, 0); err != nil {
		return err
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
	// A free page that the tree still uses would be handed out by the next
	// write and overwrite live data (or make the tree cyclic).
	ids, err := at(int64(m.freelist)*ps+boltHeader+int64(idx*8), int(count*8))
	if err != nil {
		return fmt.Errorf("freelist ids: %w", err)
	}
	free := make(map[uint64]bool, count)
	for i := uint64(0); i < count; i++ {
		id := binary.LittleEndian.Uint64(ids[i*8:])
		switch {
		case id < 2 || id >= m.hwm:
			return fmt.Errorf("freelist holds page %d outside [2, %d)", id, m.hwm)
		case free[id] || pc.seen[id]:
			return fmt.Errorf("freelist holds page %d twice or a page in use", id)
		case id >= m.freelist && id <= m.freelist+overflow:
			return fmt.Errorf("freelist holds its own page %d", id)
		}
		free[id] = true
	}
	return nil
}

// pageChecker walks the B+trees of the root bucket and of every bucket in it
// with plain reads, so that bbolt's cursors, which trust every offset and
// follow every child pointer, only ever see a well-formed tree: each page in
// range, typed, referenced once (no cycles), every element, key and value
// inside its page.
type pageChecker struct {
	f    *os.File
	ps   int64
	hwm  uint64
	seen map[uint64]bool
}

const (
	boltBranchFlag     = 0x01
	boltLeafFlag       = 0x02
	boltBucketLeafFlag = 0x01 // leaf element flag: the value is a bucket
	boltElemLen        = 16
	boltBucketHdr      = 16 // root pgid u64, sequence u64
	maxTreeDepth       = 64
)

func (pc *pageChecker) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	if id < 2 || id >= pc.hwm {
		return fmt.Errorf("page %d outside [2, %d)", id, pc.hwm)
	}
	hdr := make([]byte, boltHeader)
	if _, err := pc.f.ReadAt(hdr, int64(id)*pc.ps); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	overflow := uint64(binary.LittleEndian.Uint32(hdr[12:]))
	if gotID := binary.LittleEndian.Uint64(hdr); gotID != id {
		return fmt.Errorf("page %d identifies as %d", id, gotID)
	}
	if overflow >= pc.hwm || id+overflow >= pc.hwm {
		return fmt.Errorf("page %d: overflow %d past the high water mark", id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if pc.seen[i] {
			return fmt.Errorf("page %d referenced twice", i)
		}
		pc.seen[i] = true
	}
	page := make([]byte, int64(overflow+1)*pc.ps)
	if _, err := pc.f.ReadAt(page, int64(id)*pc.ps); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	return pc.page(id, page, depth)
}

// page checks one page image (a mapped page or an inline bucket's page).
func (pc *pageChecker) page(id uint64, page []byte, depth int) error {
	if len(page) < boltHeader {
		return fmt.Errorf("page %d: %d bytes", id, len(page))
	}
	flags := binary.LittleEndian.Uint16(page[8:])
	count := int(binary.LittleEndian.Uint16(page[10:]))
	if boltHeader+count*boltElemLen > len(page) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	in := func(i int, pos, n uint64) bool { // element i's data at pos (relative to the element), n bytes
		start := uint64(boltHeader+i*boltElemLen) + pos
		return pos <= uint64(len(page)) && n <= uint64(len(page)) && start+n <= uint64(len(page))
	}
	switch flags {
	case boltBranchFlag:
		if count == 0 {
			return fmt.Errorf("page %d: empty branch", id)
		}
		for i := 0; i < count; i++ {
			e := page[boltHeader+i*boltElemLen:]
			pos, ksize := uint64(binary.LittleEndian.Uint32(e)), uint64(binary.LittleEndian.Uint32(e[4:]))
			if !in(i, pos, ksize) {
				return fmt.Errorf("page %d: branch key %d outside the page", id, i)
			}
			if err := pc.tree(binary.LittleEndian.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		}
	case boltLeafFlag:
		for i := 0; i < count; i++ {
			e := page[boltHeader+i*boltElemLen:]
			ef, pos := binary.LittleEndian.Uint32(e), uint64(binary.LittleEndian.Uint32(e[4:]))
			ksize, vsize := uint64(binary.LittleEndian.Uint32(e[8:])), uint64(binary.LittleEndian.Uint32(e[12:]))
			if !in(i, pos, ksize+vsize) {
				return fmt.Errorf("page %d: leaf element %d outside the page", id, i)
			}
			if ef&boltBucketLeafFlag == 0 {
				continue
			}
			if vsize < boltBucketHdr {
				return fmt.Errorf("page %d: bucket header %d too short", id, i)
			}
			start := uint64(boltHeader+i*boltElemLen) + pos + ksize
			v := page[start : start+vsize]
			if root := binary.LittleEndian.Uint64(v); root != 0 {
				if err := pc.tree(root, depth+1); err != nil {
					return err
				}
			} else if err := pc.page(id, v[boltBucketHdr:], depth+1); err != nil { // inline bucket
				return err
			}
		}
	default:
		return fmt.Errorf("page %d: not a branch or leaf page (flags %#x)", id, flags)
	}
	return nil
}
