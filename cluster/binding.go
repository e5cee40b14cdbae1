package cluster

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kind says what a binding key is.
type Kind uint8

const (
	// Session: the key is a client session id (envelope sid).
	Session Kind = iota + 1
	// Channel: the key is an end-to-end channel id (SecureOpen cid, sec.enc.kid).
	Channel
)

func (k Kind) String() string {
	switch k {
	case Session:
		return "session"
	case Channel:
		return "channel"
	}
	return "kind(" + fmt.Sprint(uint8(k)) + ")"
}

// Binding pins a session or channel to one replica. Revision is the KV
// revision it was read or written at (0: not yet confirmed by the cluster);
// it is what Update compares against.
type Binding struct {
	Replica  string `json:"r"`           // replica system id
	Sentinel string `json:"s"`           // the sentinel that made the binding
	Epoch    uint64 `json:"e"`           // incremented by every re-pin
	Client   string `json:"c,omitempty"` // channel bindings: the client session that opened it
	Revision uint64 `json:"-"`
}

// Result is what a background write ended in.
type Result struct {
	// Binding is what the cluster holds now: ours when Won, else the winner
	// the store adopted (another sentinel's create or re-pin).
	Binding Binding
	Won     bool
	// Err is set when the write could not be made (cluster unreachable past
	// the write timeout, backlog full, store closed). The local binding
	// stays: routing goes on with it and the next watch event corrects it.
	Err error
}

// Event is a binding change seen by the store's watch.
type Event struct {
	Kind    Kind
	ID      string
	Binding Binding // the new binding (zero when Deleted)
	Deleted bool
}

// Errors of background writes.
var (
	// ErrBacklog: the write queue is full (the cluster has been unwritable
	// for a while); the write is dropped, the local binding kept.
	ErrBacklog = errors.New("cluster: binding write backlog full")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("cluster: store closed")
	// ErrBadKey: empty id, unknown kind, or an empty replica.
	ErrBadKey = errors.New("cluster: bad binding key or value")
)

// BindingStore holds the session and channel bindings of a cluster.
//
// The contract that keeps the hot path off the network: Lookup reads only
// local memory; Create, Update and Delete change local memory at once and
// write to the cluster in the background, reporting through done (called
// once, on a goroutine of the store's, and it must not block; nil is allowed; LocalStore calls it before returning). A
// Create or Update that loses to another sentinel's adopts the winner
// locally before done reports it. Writes to one key are applied in the
// order they were made.
type BindingStore interface {
	// Lookup returns the binding of id, if any. Local memory only.
	Lookup(k Kind, id string) (Binding, bool)
	// Create binds id to b unless id is already bound. It returns the
	// binding in effect now and whether it is b (the local winner); the
	// cluster-wide outcome arrives in done.
	Create(k Kind, id string, b Binding, done func(Result)) (Binding, bool)
	// Update re-pins id to b if the cluster's binding is still at revision
	// rev (the Revision of the binding the caller looked up; 0 means "the
	// latest this store knows when the write runs").
	Update(k Kind, id string, b Binding, rev uint64, done func(Result))
	// Delete unbinds id.
	Delete(k Kind, id string)
	// Watch calls fn for every change made by another sentinel or confirmed
	// by the cluster, on one store goroutine; fn must not block. The
	// returned func stops it.
	Watch(fn func(Event)) (stop func())
	// Close stops the background work; queued writes are abandoned with
	// ErrClosed.
	Close() error
}

// kvKey maps a kind and id to a KV key. Ids are arbitrary strings and KV
// keys allow only [-/_=.a-zA-Z0-9], so the id is base64url-encoded.
func kvKey(k Kind, id string) string {
	p := "s."
	if k == Channel {
		p = "c."
	}
	return p + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func parseKVKey(key string) (Kind, string, error) {
	var k Kind
	switch {
	case strings.HasPrefix(key, "s."):
		k = Session
	case strings.HasPrefix(key, "c."):
		k = Channel
	default:
		return 0, "", fmt.Errorf("%w: key %q", ErrBadKey, key)
	}
	id, err := base64.RawURLEncoding.DecodeString(key[2:])
	if err != nil || len(id) == 0 {
		return 0, "", fmt.Errorf("%w: key %q", ErrBadKey, key)
	}
	return k, string(id), nil
}

func encodeBinding(b Binding) ([]byte, error) {
	v, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode binding: %w", err)
	}
	return v, nil
}

// decodeBinding never panics; a value without a replica is refused.
func decodeBinding(v []byte) (Binding, error) {
	var b Binding
	if err := json.Unmarshal(v, &b); err != nil {
		return Binding{}, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	if b.Replica == "" {
		return Binding{}, fmt.Errorf("%w: no replica", ErrBadKey)
	}
	return b, nil
}

func validKey(k Kind, id string) bool { return (k == Session || k == Channel) && id != "" }
