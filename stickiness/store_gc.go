package stickiness

import (
	"fmt"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// view runs fn in a read transaction; a bbolt panic or a fault on a damaged
// page is returned as an error wrapping ErrCorruptStore.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorruptStore, s.path, r)
		}
	}()
	return s.db.View(fn)
}

// clean runs once at open, before the writer starts and before any replica
// attaches, so that a fault it hits still counts as a corrupt file: expired
// records are deleted, undecodable ones too (after the whole file was copied
// aside to <path>.corrupt-<UTC time>, logged as an error and counted in
// Corrupt: one bad record must not cost all the others), and so are pool
// memberships of replicas that no live binding names any more (a membership
// only matters for the bindings a re-attaching replica gets back).
func (s *Store) clean() error {
	now := s.now()
	// Phase 1, read-only: is anything undecodable? Then keep a copy of the
	// file as it was before we delete anything.
	// It also tells whether phase 2 has anything to do: on a clean file the
	// open then costs no write transaction.
	bad, stale := 0, 0
	var firstBad error
	var copied string
	err := s.view(func(tx *bolt.Tx) error {
		live := map[string]bool{}
		for _, k := range []kind{kindSession, kindChannel} {
			_ = bucketOf(tx, k).ForEach(func(key, v []byte) error {
				b, err := decodeRecord(k, key, v)
				switch {
				case err != nil:
					bad++
					if firstBad == nil {
						firstBad = err
					}
				case !now.Before(b.Expires):
					stale++
				default:
					live[b.Replica] = true
				}
				return nil
			})
		}
		_ = tx.Bucket(bucketMembers).ForEach(func(key, _ []byte) error {
			_, r, ok := parseMemberKey(key)
			switch {
			case !ok:
				bad++
				if firstBad == nil {
					firstBad = fmt.Errorf("%w: member key %q", errBadRecord, key)
				}
			case !live[r]:
				stale++
			}
			return nil
		})
		if bad == 0 {
			return nil
		}
		copied = s.path + ".corrupt-" + now.UTC().Format("20060102T150405.000000000Z")
		return tx.CopyFile(copied, 0o600)
	})
	if err != nil {
		return err
	}
	if bad > 0 {
		s.corrupt.Add(1)
		s.log.Error("stickiness store holds undecodable records; copied the file aside and deleted them",
			"records", bad, "copied_to", copied, "err", firstBad)
	}
	if bad+stale == 0 {
		return nil
	}
	// Phase 2: delete what cannot be restored.
	var expired, dropped, members, kept int
	err = s.update(func(tx *bolt.Tx) error {
		expired, dropped, members, kept = 0, 0, 0, 0
		live := map[string]bool{}
		for _, k := range []kind{kindSession, kindChannel} {
			_, err := deleteKeys(bucketOf(tx, k), func(key, v []byte) bool {
				b, err := decodeRecord(k, key, v)
				switch {
				case err != nil:
					dropped++
					return true
				case !now.Before(b.Expires):
					expired++
					return true
				}
				live[b.Replica] = true
				kept++
				return false
			})
			if err != nil {
				return err
			}
		}
		_, err := deleteKeys(tx.Bucket(bucketMembers), func(key, _ []byte) bool {
			_, r, ok := parseMemberKey(key)
			switch {
			case !ok:
				dropped++
				return true
			case !live[r]:
				members++
				return true
			}
			return false
		})
		return err
	})
	if err != nil {
		return err
	}
	s.deletedExpired.Add(uint64(expired))
	s.deletedBad.Add(uint64(dropped))
	s.deletedMembers.Add(uint64(members))
	if expired+dropped+members > 0 {
		s.log.Info("stickiness store cleaned", "expired_deleted", expired, "undecodable_deleted", dropped,
			"departed_members_deleted", members, "kept", kept)
	}
	return nil
}

// Load returns every stored binding that is still live, sessions first.
// (Expired and undecodable records were deleted when the store was opened;
// any that appeared since are skipped here and left to the disk sweep.)
func (s *Store) Load() (out []Binding, err error) {
	now := s.now()
	err = s.view(func(tx *bolt.Tx) error {
		for _, k := range []kind{kindSession, kindChannel} {
			if err := bucketOf(tx, k).ForEach(func(key, v []byte) error {
				if b, err := decodeRecord(k, key, v); err == nil && now.Before(b.Expires) {
					out = append(out, b)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stickiness: load bindings: %w", err)
	}
	return out, nil
}

func bucketOf(tx *bolt.Tx, k kind) *bolt.Bucket {
	if k == kindChannel {
		return tx.Bucket(bucketChannels)
	}
	return tx.Bucket(bucketSessions)
}

// sweepDisk deletes records that can no longer back a live binding (see
// deadOnDisk) and undecodable ones. It runs on the writer goroutine.
func (s *Store) sweepDisk() {
	now := s.now()
	var expired, dropped int
	err := s.update(func(tx *bolt.Tx) error {
		for _, k := range []kind{kindSession, kindChannel} {
			if _, err := deleteKeys(bucketOf(tx, k), func(key, v []byte) bool {
				b, err := decodeRecord(k, key, v)
				switch {
				case err != nil:
					dropped++
					return true
				case deadOnDisk(b, now):
					expired++
					return true
				}
				return false
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("disk sweep failed", "err", err)
		return
	}
	s.deletedExpired.Add(uint64(expired))
	s.deletedBad.Add(uint64(dropped))
	if dropped > 0 {
		s.log.Error("disk sweep deleted undecodable records", "records", dropped)
	}
	if expired > 0 {
		s.log.Debug("disk sweep deleted expired records", "records", expired)
	}
}

// Members returns the committed pool membership (pool → replicas, in key
// order). Queued changes are not visible until committed; call Flush first
// if that matters.
func (s *Store) Members() (map[string][]string, error) {
	out := map[string][]string{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMembers).ForEach(func(k, _ []byte) error {
			if pool, replica, ok := parseMemberKey(k); ok {
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

// FileSize is the size of the store file in bytes (bbolt never shrinks it:
// freed pages are reused, so a bounded record count means a bounded file).
func (s *Store) FileSize() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
