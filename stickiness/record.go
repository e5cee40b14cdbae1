package stickiness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// errBadRecord is wrapped by every decodeRecord error: the record is dropped
// from the file, the others are kept.
var errBadRecord = errors.New("undecodable record")

// maxRecordTTL bounds the TTL a stored record may claim. Restore clamps to
// MaxTTL anyway; the bound only keeps a damaged record from making the disk
// sweep's grace period (TTL/2) effectively infinite.
const maxRecordTTL = 30 * 24 * time.Hour

// encodeRecord is the value stored under a binding's key: JSON of Binding
// without the key itself (it is the bbolt key).
func encodeRecord(b Binding) ([]byte, error) {
	v, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("stickiness: encode binding %q: %w", b.Replica, err)
	}
	return v, nil
}

// decodeRecord parses a stored value of bucket k under key. Whatever the
// bytes, it returns a Binding or an error wrapping errBadRecord, never panics.
// A record must name a replica and carry a sane TTL and expiry; the key
// becomes the session's client sid or the channel id.
func decodeRecord(k kind, key, v []byte) (Binding, error) {
	var b Binding
	if len(key) == 0 {
		return b, fmt.Errorf("%w: empty key", errBadRecord)
	}
	if err := json.Unmarshal(v, &b); err != nil {
		return Binding{}, fmt.Errorf("%w: %q: %w", errBadRecord, key, err)
	}
	switch {
	case b.Replica == "":
		return Binding{}, fmt.Errorf("%w: %q: no replica", errBadRecord, key)
	case b.TTL < 0 || b.TTL > maxRecordTTL:
		return Binding{}, fmt.Errorf("%w: %q: ttl %v out of range", errBadRecord, key, b.TTL)
	case b.Expires.IsZero():
		return Binding{}, fmt.Errorf("%w: %q: no expiry", errBadRecord, key)
	}
	if k == kindChannel {
		b.ChannelID = string(key)
	} else {
		b.ClientSID, b.ChannelID = string(key), ""
	}
	return b, nil
}

// memberKey joins pool and replica with NUL, which neither contains.
func memberKey(pool, replica string) []byte { return []byte(pool + "\x00" + replica) }

// parseMemberKey splits a members-bucket key; ok is false for a key that
// memberKey cannot have produced.
func parseMemberKey(k []byte) (pool, replica string, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i <= 0 || i == len(k)-1 || bytes.IndexByte(k[i+1:], 0) >= 0 {
		return "", "", false
	}
	return string(k[:i]), string(k[i+1:]), true
}

// deadOnDisk reports whether a stored record can no longer back a live
// binding at now. The table re-persists a binding's slid expiry only once it
// lags by more than TTL/2, so the stored expiry of a binding still alive in
// memory may trail the real one by up to TTL/2: the disk sweep waits that long.
func deadOnDisk(b Binding, now time.Time) bool {
	return !now.Before(b.Expires.Add(b.TTL / 2))
}
