package stickiness

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Store errors.
var (
	// ErrCorruptStore: the file is not a readable bbolt database (garbage,
	// truncated, wrong version or page size, damaged pages). OpenStore returns
	// it; OpenStoreWith with RecoverCorrupt moves the file aside instead.
	ErrCorruptStore = errors.New("stickiness: store file is corrupt or unreadable")
	// ErrStoreLocked: another process holds the file's lock (another sentinel
	// on the same storage path). Never recovered from: two writers on one
	// store is an operator error, and waiting would hang the start.
	ErrStoreLocked = errors.New("stickiness: store file is locked by another process")
	// ErrStoreClosed is returned by Flush after Close.
	ErrStoreClosed = errors.New("stickiness: store closed")
)

// Write-behind tuning: a batch is committed every flushEvery or as soon as it
// holds batchMax changes; the queue absorbs bursts (a mass purge) in between.
const (
	queueSize  = 1 << 16
	batchMax   = 1000
	flushEvery = 100 * time.Millisecond
	// DefaultLockTimeout is how long OpenStore waits for another process's
	// lock on the file before failing with ErrStoreLocked.
	DefaultLockTimeout = time.Second
	// DefaultDiskSweep is how often the writer deletes stored records that can
	// no longer back a live binding (see deadOnDisk). Records normally leave
	// the file when the table drops them; the sweep catches the ones whose
	// delete was lost (full queue, failed commit, evicted before the store
	// was attached).
	DefaultDiskSweep = 10 * time.Minute
)

var (
	bucketSessions = []byte("sessions")
	bucketChannels = []byte("channels")
	bucketMembers  = []byte("members")
)

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opMemberAdd
	opMemberRemove
	opMemberForget // every pool membership of one replica
	opFlush
	opSweep
)

// change is one queued mutation. It is a plain value so that queueing it on
// the hot path costs a channel send and nothing else.
type change struct {
	op        opKind
	kind      kind
	key       string // client sid, channel id, or pool name for members
	clientSID string
	replica   string
	ttl       int64 // ns
	expires   int64 // unix ns
	flushed   chan struct{}
}

// StoreOptions configures OpenStoreWith. The zero value is OpenStore's
// behaviour.
type StoreOptions struct {
	Logger *slog.Logger
	// RecoverCorrupt: a corrupt file (ErrCorruptStore) is renamed to
	// <path>.corrupt-<UTC time>, logged as an error, counted (Corrupt) and
	// replaced by a fresh empty store, instead of failing the open.
	RecoverCorrupt bool
	// Now is the wall clock for record expiry and the .corrupt suffix
	// (time.Now by default).
	Now func() time.Time
	// LockTimeout bounds the wait for another process's lock
	// (DefaultLockTimeout when zero).
	LockTimeout time.Duration
	// DiskSweep is the period of the disk sweep (DefaultDiskSweep when zero;
	// negative turns the periodic sweep off).
	DiskSweep time.Duration
}

// Store persists bindings and pool membership in a bbolt file, written
// behind by one goroutine that Close stops.
type Store struct {
	db       *bolt.DB
	path     string
	log      *slog.Logger
	now      func() time.Time
	sweep    time.Duration
	lockWait time.Duration
	queue    chan change
	stop     chan struct{}
	done     chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	dropped, written, failed, commits atomic.Uint64
	// corrupt counts files moved or copied aside (.corrupt-<time>);
	// deletedExpired, deletedBad and deletedMembers count records removed
	// from the file by Load and the disk sweep (not ordinary unbinds).
	corrupt, deletedExpired, deletedBad, deletedMembers atomic.Uint64
	movedAside                                          atomic.Pointer[string]
}

// OpenStore opens (or creates) the store at path and starts its writer.
// A corrupt or unreadable file yields an error wrapping ErrCorruptStore.
func OpenStore(path string, log *slog.Logger) (*Store, error) {
	return OpenStoreWith(path, StoreOptions{Logger: log})
}

// OpenStoreWith opens (or creates, with its directory) the store at path and
// starts its writer. Errors: ErrStoreLocked when another process holds the
// file; ErrCorruptStore for a damaged file unless o.RecoverCorrupt; any other
// error (permissions, a directory in the way, I/O) is returned wrapped as is,
// since moving a file we cannot read as the wrong user would destroy it.
func OpenStoreWith(path string, o StoreOptions) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.DiskSweep == 0 {
		o.DiskSweep = DefaultDiskSweep
	}
	s := &Store{
		path:     path,
		log:      o.Logger.With("component", "stickiness-store", "path", path),
		now:      o.Now,
		sweep:    o.DiskSweep,
		lockWait: o.LockTimeout,
		queue:    make(chan change, queueSize),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if err := preflight(path); err != nil {
		return nil, err
	}
	err := s.open()
	if errors.Is(err, ErrCorruptStore) && o.RecoverCorrupt {
		cause := err
		moved, mvErr := moveAside(path, o.Now())
		if mvErr != nil {
			return nil, fmt.Errorf("%w; moving it aside failed: %w", cause, mvErr)
		}
		s.log.Error("stickiness store is corrupt; moved it aside and started an empty one",
			"moved_to", moved, "err", cause)
		s.corrupt.Add(1)
		s.movedAside.Store(&moved)
		err = s.open()
	}
	if err != nil {
		return nil, err
	}
	go s.run()
	return s, nil
}

// open opens and verifies the file, then cleans it (see clean): everything
// that reads the whole file happens here, where damage can still be
// answered by moving the file aside.
func (s *Store) open() error {
	db, err := openBolt(s.path, s.lockWait)
	if err != nil {
		return err
	}
	s.db = db
	if err := s.clean(); err != nil {
		_ = db.Close()
		s.db = nil
		if errors.Is(err, ErrCorruptStore) {
			return err
		}
		return fmt.Errorf("%w: %s: cleaning: %w", ErrCorruptStore, s.path, err)
	}
	return nil
}

// preflight creates the directory and refuses what is not a regular file we
// may read and write: those are configuration errors, not corruption.
func preflight(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("stickiness: store directory: %w", err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stickiness: store %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("stickiness: store %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("stickiness: store %s: %w", path, err)
	}
	return f.Close()
}

// moveAside renames a corrupt file to <path>.corrupt-<UTC time>, keeping it
// for inspection.
func moveAside(path string, now time.Time) (string, error) {
	to := path + ".corrupt-" + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}

// openBolt opens the file and proves it readable before anyone relies on it:
// bbolt trusts its pages and may panic, or fault on a page past the end of a
// truncated file, instead of returning an error, so the open and a full walk
// run here with faults turned into panics and panics into ErrCorruptStore.
func openBolt(path string, lockWait time.Duration) (db *bolt.DB, err error) {
	if err := precheck(path); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("stickiness: open store: %w", err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptStore, path, err)
	}
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			} else if file != nil {
				// A panic inside bolt.Open leaves the file open, mapped and locked;
				// closing it is all we can do (precheck keeps the known ones out).
				_ = file.Close()
			}
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorruptStore, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		}})
	var pe *fs.PathError
	switch {
	case err == nil:
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s (gave up after %v; is another sentinel using it?)", ErrStoreLocked, path, lockWait)
	case errors.As(err, &pe):
		return nil, fmt.Errorf("stickiness: open store: %w", err)
	default:
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptStore, path, err)
	}
	if err := verify(db, file); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptStore, path, err)
	}
	return db, nil
}

// touchSink keeps verify's reads of stored values from being optimised away.
var touchSink byte

// verify checks that the file holds every page its meta page claims, creates
// the buckets and walks every key once, so that damage is found now rather
// than as a panic on the writer goroutine later. The caller turns faults into
// panics and recovers them.
func verify(db *bolt.DB, file *os.File) error {
	fi, err := file.Stat()
	if err != nil {
		return err
	}
	if err := db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("truncated: %d bytes, meta page claims %d", fi.Size(), tx.Size())
		}
		return nil
	}); err != nil {
		return err
	}
	if err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				// Touch both ends of every key and value: a length or offset
				// that points outside the file faults here, not in a later write.
				touchSink += k[0] + k[len(k)-1]
				if len(v) > 0 {
					touchSink += v[0] + v[len(v)-1]
				}
			}
			return nil
		})
	}); err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketChannels, bucketMembers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("bucket %s: %w", b, err)
			}
		}
		return nil
	})
}

// enqueue never blocks: when the queue is full the change is dropped and
// counted (the binding then simply is not persisted; it lives on in memory).
func (s *Store) enqueue(c change) {
	if s.closed.Load() {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- c:
	default:
		s.dropped.Add(1)
	}
}

// SaveMember records that replica is a member of pool.
func (s *Store) SaveMember(pool, replica string) {
	s.enqueue(change{op: opMemberAdd, key: pool, replica: replica})
}

// RemoveMember records that replica left pool.
func (s *Store) RemoveMember(pool, replica string) {
	s.enqueue(change{op: opMemberRemove, key: pool, replica: replica})
}

// ForgetReplica deletes every stored pool membership of replica (it is gone
// from all its pools; Table.PurgeReplica calls it).
func (s *Store) ForgetReplica(replica string) {
	s.enqueue(change{op: opMemberForget, replica: replica})
}

// Dropped is the number of changes lost to a full queue or a closed store.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Written is the number of changes committed to the file.
func (s *Store) Written() uint64 { return s.written.Load() }

// Corrupt is the number of corrupt files set aside: 1 when the file was moved
// aside at open, plus one per Load that found undecodable records.
func (s *Store) Corrupt() uint64 { return s.corrupt.Load() }

// MovedAside is where the corrupt file found at open was moved ("" if none).
func (s *Store) MovedAside() string {
	if p := s.movedAside.Load(); p != nil {
		return *p
	}
	return ""
}

// StoreStats are the store's counters.
type StoreStats struct {
	Dropped        uint64 `json:"dropped"`        // changes the queue could not take
	Failed         uint64 `json:"failed"`         // changes lost to a failed commit
	Corrupt        uint64 `json:"corrupt"`        // corrupt files set aside
	DeletedExpired uint64 `json:"deletedExpired"` // expired records deleted by Load and the disk sweep
	DeletedBad     uint64 `json:"deletedBad"`     // undecodable records deleted by Load and the disk sweep
	DeletedMembers uint64 `json:"deletedMembers"` // memberships of departed replicas deleted
}

// Stats returns the store's counters.
func (s *Store) Stats() StoreStats {
	return StoreStats{Dropped: s.dropped.Load(), Failed: s.failed.Load(), Corrupt: s.corrupt.Load(),
		DeletedExpired: s.deletedExpired.Load(), DeletedBad: s.deletedBad.Load(), DeletedMembers: s.deletedMembers.Load()}
}

// Flush waits until every change queued before it is committed. It blocks;
// never call it on a hot path.
func (s *Store) Flush() error { return s.barrier(opFlush) }

// SweepDisk runs the disk sweep now and waits for it (the writer also runs it
// every StoreOptions.DiskSweep).
func (s *Store) SweepDisk() error { return s.barrier(opSweep) }

func (s *Store) barrier(op opKind) error {
	if s.closed.Load() {
		return ErrStoreClosed
	}
	c := change{op: op, flushed: make(chan struct{})}
	select {
	case s.queue <- c:
	case <-s.done:
		return ErrStoreClosed
	}
	select {
	case <-c.flushed:
		return nil
	case <-s.done:
		return ErrStoreClosed
	}
}

// Close commits what is queued, stops the writer and closes the file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func (s *Store) run() {
	defer close(s.done)
	// A page damaged after the open checks must cost a batch, not the process.
	debug.SetPanicOnFault(true)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	var sweepC <-chan time.Time
	if s.sweep > 0 {
		sweep := time.NewTicker(s.sweep)
		defer sweep.Stop()
		sweepC = sweep.C
	}
	batch := make([]change, 0, batchMax)
	take := func(c change) {
		switch c.op {
		case opFlush:
			batch = s.commit(batch)
			close(c.flushed)
			return
		case opSweep:
			batch = s.commit(batch)
			s.sweepDisk()
			close(c.flushed)
			return
		}
		batch = append(batch, c)
		if len(batch) >= batchMax {
			batch = s.commit(batch)
		}
	}
	for {
		select {
		case c := <-s.queue:
			take(c)
		case <-tick.C:
			batch = s.commit(batch)
		case <-sweepC:
			batch = s.commit(batch)
			s.sweepDisk()
		case <-s.stop:
			for {
				select {
				case c := <-s.queue:
					take(c)
				default:
					s.commit(batch)
					return
				}
			}
		}
	}
}

// update runs fn in a write transaction; a bbolt panic (damaged page) is
// returned as an error wrapping ErrCorruptStore.
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorruptStore, s.path, r)
		}
	}()
	return s.db.Update(fn)
}

// commit writes batch in one transaction and returns it emptied.
func (s *Store) commit(batch []change) []change {
	if len(batch) == 0 {
		return batch
	}
	err := s.update(func(tx *bolt.Tx) error {
		for i := range batch {
			if err := s.apply(tx, &batch[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.failed.Add(uint64(len(batch)))
		s.log.Error("write-behind commit failed; changes lost", "changes", len(batch), "err", err)
	} else {
		s.written.Add(uint64(len(batch)))
		s.commits.Add(1)
	}
	clear(batch) // drop string references
	return batch[:0]
}

func (s *Store) apply(tx *bolt.Tx, c *change) error {
	switch c.op {
	case opPut, opDelete:
		bk := tx.Bucket(bucketSessions)
		if c.kind == kindChannel {
			bk = tx.Bucket(bucketChannels)
		}
		if c.op == opDelete {
			return bk.Delete([]byte(c.key))
		}
		b := Binding{ClientSID: c.clientSID, Replica: c.replica, TTL: time.Duration(c.ttl), Expires: time.Unix(0, c.expires).UTC()}
		if c.kind == kindChannel {
			b.ChannelID = c.key
		}
		v, err := encodeRecord(b)
		if err != nil {
			return err
		}
		return bk.Put([]byte(c.key), v)
	case opMemberAdd:
		return tx.Bucket(bucketMembers).Put(memberKey(c.key, c.replica), nil)
	case opMemberRemove:
		return tx.Bucket(bucketMembers).Delete(memberKey(c.key, c.replica))
	case opMemberForget:
		n, err := deleteKeys(tx.Bucket(bucketMembers), func(k, _ []byte) bool {
			_, r, ok := parseMemberKey(k)
			return ok && r == c.replica
		})
		s.deletedMembers.Add(uint64(n))
		return err
	}
	return nil
}

// deleteKeys deletes every key of bk that dead selects and returns how many.
// Keys are collected first: bbolt cursors must not be moved across deletes.
func deleteKeys(bk *bolt.Bucket, dead func(k, v []byte) bool) (int, error) {
	var keys [][]byte
	if err := bk.ForEach(func(k, v []byte) error {
		if dead(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range keys {
		err := bk.Delete(k)
		if errors.Is(err, bolterrors.ErrIncompatibleValue) {
			err = bk.DeleteBucket(k) // a nested bucket where a record belongs
		}
		if err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
