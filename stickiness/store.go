package stickiness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Store errors.
var (
	// ErrCorruptStore: the file is not a readable bbolt database (garbage,
	// truncated, wrong version, unreadable). The caller should log it, move
	// the file aside and start with an empty table.
	ErrCorruptStore = errors.New("stickiness: store file is corrupt or unreadable")
	// ErrStoreLocked: another process holds the file.
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
	lockWait   = time.Second
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
	opFlush
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

// Store persists bindings and pool membership in a bbolt file, written
// behind by one goroutine that Close stops.
type Store struct {
	db    *bolt.DB
	log   *slog.Logger
	queue chan change
	stop  chan struct{}
	done  chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	dropped, written, failed, commits atomic.Uint64
}

// OpenStore opens (or creates) the store at path and starts its writer.
// A corrupt or unreadable file yields an error wrapping ErrCorruptStore.
func OpenStore(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	if err := initBuckets(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptStore, path, err)
	}
	s := &Store{
		db:    db,
		log:   log.With("component", "stickiness-store", "path", path),
		queue: make(chan change, queueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.run()
	return s, nil
}

func openBolt(path string) (db *bolt.DB, err error) {
	// bbolt can panic on a damaged file instead of returning an error.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorruptStore, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrStoreLocked, path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("stickiness: open store %s: %w", path, err)
	default:
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptStore, path, err)
	}
}

// initBuckets creates the buckets and walks every page once, so that damage
// is found now, as ErrCorruptStore, rather than as a panic later.
func initBuckets(db *bolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading pages: %v", r)
		}
	}()
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketChannels, bucketMembers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error { return nil })
		})
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

// Dropped is the number of changes lost to a full queue or a closed store.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Written is the number of changes committed to the file.
func (s *Store) Written() uint64 { return s.written.Load() }

// Flush waits until every change queued before it is committed. It blocks;
// never call it on a hot path.
func (s *Store) Flush() error {
	if s.closed.Load() {
		return ErrStoreClosed
	}
	c := change{op: opFlush, flushed: make(chan struct{})}
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
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	batch := make([]change, 0, batchMax)
	take := func(c change) {
		if c.op == opFlush {
			batch = s.commit(batch)
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

// commit writes batch in one transaction and returns it emptied.
func (s *Store) commit(batch []change) []change {
	if len(batch) == 0 {
		return batch
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range batch {
			if err := apply(tx, &batch[i]); err != nil {
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

func apply(tx *bolt.Tx, c *change) error {
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
		v, err := json.Marshal(b)
		if err != nil {
			return err
		}
		return bk.Put([]byte(c.key), v)
	case opMemberAdd:
		return tx.Bucket(bucketMembers).Put(memberKey(c.key, c.replica), nil)
	case opMemberRemove:
		return tx.Bucket(bucketMembers).Delete(memberKey(c.key, c.replica))
	}
	return nil
}

// memberKey joins pool and replica with NUL, which neither contains.
func memberKey(pool, replica string) []byte { return []byte(pool + "\x00" + replica) }

// Load reads every stored binding (sessions, then channels). Entries that do
// not decode are skipped and logged, not fatal: one bad record must not cost
// all the others.
func (s *Store) Load() (out []Binding, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: %v", ErrCorruptStore, r)
		}
	}()
	bad := 0
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSessions, bucketChannels} {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				var b Binding
				if json.Unmarshal(v, &b) != nil || b.Replica == "" {
					bad++
					return nil
				}
				if string(name) == string(bucketChannels) {
					b.ChannelID = string(k)
				} else {
					b.ClientSID = string(k)
				}
				out = append(out, b)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stickiness: load bindings: %w", err)
	}
	if bad > 0 {
		s.log.Warn("skipped undecodable bindings", "count", bad)
	}
	return out, nil
}

// Members returns the committed pool membership (pool → replicas, sorted).
// Queued changes are not visible until committed; call Flush first if that
// matters.
func (s *Store) Members() (map[string][]string, error) {
	out := map[string][]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMembers).ForEach(func(k, _ []byte) error {
			pool, replica, ok := strings.Cut(string(k), "\x00")
			if ok {
				out[pool] = append(out[pool], replica)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("stickiness: load members: %w", err)
	}
	return out, nil
}
