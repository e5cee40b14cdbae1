package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The cluster's key directory (issue #15, signing profiles). Under overlay and strict-overlay
// every sentinel is the key directory of the nodes attached to it: it verifies what they send
// with the keys they presented and answers KeyRequest{kid} for them. Clustered, a node's
// envelopes and key requests reach sentinels it is not attached to, so each sentinel publishes
// the public keys it vouches for (its attached nodes', and its own) in a JetStream KV bucket,
// one key per kid with a per-key TTL refreshed like the replica directory's, and every
// sentinel watches the bucket into its local key store. Lookups stay local: the hot path
// never waits on NATS.

// SharedKey is one public key of the cluster's key directory.
type SharedKey struct {
	Kid      string          `json:"-"`
	Sentinel string          `json:"s"` // the sentinel that vouches for it (the owner is attached there)
	Path     string          `json:"p"` // the owner's physical path, under /<Sentinel>
	JWK      json.RawMessage `json:"k"` // the public JWK as the owner presented it
}

// Bounds of one shared key: a kid is an id, a JWK with an x5c chain a few kilobytes.
const (
	maxSharedKid = 256
	maxSharedJWK = 32 << 10
)

// ErrBadSharedKey: a shared key that breaks a bound or names a path outside its sentinel.
var ErrBadSharedKey = errors.New("cluster: bad shared key")

// Check validates k: bounded kid and JWK, and a path under its own sentinel's (a sentinel
// vouches only for its own subtree).
func (k SharedKey) Check() error {
	switch {
	case k.Kid == "" || len(k.Kid) > maxSharedKid:
		return fmt.Errorf("%w: kid length %d", ErrBadSharedKey, len(k.Kid))
	case len(k.JWK) == 0 || len(k.JWK) > maxSharedJWK:
		return fmt.Errorf("%w: kid %s: JWK length %d", ErrBadSharedKey, k.Kid, len(k.JWK))
	case !validID(k.Sentinel):
		return fmt.Errorf("%w: kid %s: sentinel %q", ErrBadSharedKey, k.Kid, k.Sentinel)
	case k.Path != "/"+k.Sentinel && !strings.HasPrefix(k.Path, "/"+k.Sentinel+"/"):
		return fmt.Errorf("%w: kid %s: path %q is not under sentinel %s", ErrBadSharedKey, k.Kid, k.Path, k.Sentinel)
	}
	return nil
}

// KeysSubject is the core NATS subject the key directory's changes are also announced on:
// a KV write stalls for seconds while its stream elects a new leader (after a kill -9), and a
// node that moved off a dead sentinel must be verifiable at once. The KV stays the record
// (late joiners, refreshes, TTL); the subject only makes changes arrive sooner.
func KeysSubject(cluster string) string { return "fame." + cluster + ".keys" }

// keyChange is one message on KeysSubject.
type keyChange struct {
	Op  string    `json:"o"` // "p" put, "d" delete
	Kid string    `json:"i"`
	Key SharedKey `json:"e"` // the entry (put) or its sentinel (delete)
}

// KeysBucket is the KV bucket name of cluster name's key directory.
func KeysBucket(name string) string { return "fame_" + name + "_keys" }

func sharedKeyKey(kid string) string { return "k." + base64.RawURLEncoding.EncodeToString([]byte(kid)) }

// KeyDirectory is the cluster-wide set of public keys. Each sentinel publishes the keys it
// vouches for (Publish, Withdraw); entries carry a TTL of DirectoryTTL and are refreshed every
// DirectoryTTL/3, so the keys of a sentinel that dies leave the bucket within DirectoryTTL.
// Watch delivers the other sentinels' keys (puts and deletes, unchanged refreshes skipped).
type KeyDirectory struct {
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	js     jetstream.JetStream
	bucket string

	mu     sync.Mutex
	owned  map[string]SharedKey // ours, to publish
	gone   []string             // ours, to delete
	remote map[string]SharedKey // the other sentinels', as last delivered
	fns    []func(k SharedKey, deleted bool)
	kick   chan struct{}
	kvh    jetstream.KeyValue

	watching chan struct{} // closed by Watch
	ready    chan struct{}
	synced   chan struct{}
	wonce    sync.Once
	sonce    sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewKeyDirectory starts the key directory over js. Like NewDirectory it returns at once and
// binds the bucket in the background; nothing is watched until Watch.
func NewKeyDirectory(js jetstream.JetStream, cfg Config, o StoreOptions) (*KeyDirectory, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &KeyDirectory{
		cfg: cfg, js: js, m: o.Metrics, bucket: KeysBucket(cfg.Name),
		log:   o.Logger.With("component", "cluster-keys", "cluster", cfg.Name),
		owned: map[string]SharedKey{}, remote: map[string]SharedKey{},
		kick: make(chan struct{}, 1), watching: make(chan struct{}),
		ready: make(chan struct{}), synced: make(chan struct{}),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go d.run()
	return d, nil
}

// Ready is closed once the bucket is bound; Synced once the watch has loaded its contents.
func (d *KeyDirectory) Ready() <-chan struct{}  { return d.ready }
func (d *KeyDirectory) Synced() <-chan struct{} { return d.synced }

// Publish makes k (a key this sentinel vouches for) known cluster-wide, in the background and
// again every DirectoryTTL/3. k.Sentinel is set to this sentinel.
func (d *KeyDirectory) Publish(k SharedKey) error {
	k.Sentinel = d.cfg.SentinelID
	if err := k.Check(); err != nil {
		return err
	}
	d.mu.Lock()
	d.owned[k.Kid] = k
	d.gone = deleteString(d.gone, k.Kid)
	d.mu.Unlock()
	d.announce(keyChange{Op: "p", Kid: k.Kid, Key: k})
	d.poke()
	return nil
}

// announce sends a change on KeysSubject (best effort: the KV carries it anyway).
func (d *KeyDirectory) announce(c keyChange) {
	b, err := json.Marshal(c)
	if err == nil {
		err = d.js.Conn().Publish(KeysSubject(d.cfg.Name), b)
	}
	if err != nil {
		d.log.Debug("key change not announced; the KV carries it", "kid", c.Kid, "err", err)
	}
}

// onAnnounce applies a change another sentinel announced on KeysSubject.
func (d *KeyDirectory) onAnnounce(m *nats.Msg) {
	var c keyChange
	if err := json.Unmarshal(m.Data, &c); err != nil || c.Kid == "" {
		d.m.watchEvent("key_bad")
		return
	}
	c.Key.Kid = c.Kid
	switch c.Op {
	case "p":
		d.applyPut(c.Key)
	case "d":
		d.applyDelete(c.Kid, c.Key.Sentinel)
	default:
		d.m.watchEvent("key_bad")
	}
}

// Withdraw takes back a key this sentinel published (its owner detached, or the key was
// replaced).
func (d *KeyDirectory) Withdraw(kid string) {
	d.mu.Lock()
	_, ok := d.owned[kid]
	if ok {
		delete(d.owned, kid)
		d.gone = append(d.gone, kid)
	}
	d.mu.Unlock()
	if ok {
		d.announce(keyChange{Op: "d", Kid: kid, Key: SharedKey{Sentinel: d.cfg.SentinelID}})
	}
	d.poke()
}

// Watch delivers the other sentinels' keys to fn from now on (from the watch goroutine, in
// revision order; fn must not block for long). The first call starts the watch.
func (d *KeyDirectory) Watch(fn func(k SharedKey, deleted bool)) {
	d.mu.Lock()
	d.fns = append(d.fns[:len(d.fns):len(d.fns)], fn)
	d.mu.Unlock()
	d.wonce.Do(func() { close(d.watching) })
}

func (d *KeyDirectory) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Close stops publishing; this sentinel's keys are deleted (best effort, bounded by
// WriteTimeout) so that peers need not wait for their TTL.
func (d *KeyDirectory) Close() error {
	d.mu.Lock()
	for kid := range d.owned {
		d.gone = append(d.gone, kid)
	}
	clear(d.owned)
	d.mu.Unlock()
	select {
	case <-d.ready:
		d.flush()
	default:
	}
	d.cancel()
	d.wg.Wait()
	return nil
}

func (d *KeyDirectory) run() {
	defer d.wg.Done()
	kv, err := bindKV(d.ctx, d.js, ttlBucket(d.bucket, "fame-go public keys the sentinels vouch for", d.cfg), d.log)
	if err != nil {
		return
	}
	d.mu.Lock()
	d.kvh = kv
	d.mu.Unlock()
	close(d.ready)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-d.watching:
		case <-d.ctx.Done():
			return
		}
		sub, err := d.js.Conn().Subscribe(KeysSubject(d.cfg.Name), d.onAnnounce)
		if err != nil {
			d.log.Warn("key changes not subscribed; keys arrive by the KV only", "err", err)
		} else {
			defer func() { _ = sub.Unsubscribe() }()
		}
		watchKV(d.ctx, d.js.Conn(), kv, "KV_"+d.bucket, d.log, d.apply, func() { d.sonce.Do(func() { close(d.synced) }) })
	}()
	t := time.NewTicker(d.cfg.DirectoryTTL / 3)
	defer t.Stop()
	d.flush()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.kick:
			d.flush()
		case <-t.C:
			d.flush()
		}
	}
}

// flush publishes every owned key with its TTL and deletes the withdrawn ones.
func (d *KeyDirectory) flush() {
	d.mu.Lock()
	kv := d.kvh
	owned := make([]SharedKey, 0, len(d.owned))
	for _, k := range d.owned {
		owned = append(owned, k)
	}
	gone := d.gone
	d.gone = nil
	d.mu.Unlock()
	if kv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.WriteTimeout)
	defer cancel()
	for _, kid := range gone {
		d.withdraw(ctx, kv, kid)
	}
	for _, k := range owned {
		v, err := json.Marshal(k)
		if err != nil {
			continue
		}
		msg := &nats.Msg{Subject: "$KV." + d.bucket + "." + sharedKeyKey(k.Kid), Data: v}
		if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(d.cfg.DirectoryTTL)); err != nil {
			d.m.write("key_publish", "failed")
			d.log.Warn("key publish failed; retried on the next refresh", "kid", k.Kid, "err", err)
		}
	}
}

// withdraw deletes kid's entry if it is still this sentinel's: the node may have moved to
// another sentinel, which has published the same kid since, and its entry must stay. The
// delete marker reaches the watches at once; the key's TTL would remove it anyway.
func (d *KeyDirectory) withdraw(ctx context.Context, kv jetstream.KeyValue, kid string) {
	key := sharedKeyKey(kid)
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return
	}
	if err == nil {
		var k SharedKey
		if json.Unmarshal(e.Value(), &k) == nil && k.Sentinel != d.cfg.SentinelID {
			return // another sentinel's now
		}
		err = kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	}
	if err != nil {
		d.m.write("key_delete", "failed")
		d.log.Warn("key withdrawal failed; the entry's TTL removes it", "kid", kid, "err", err)
	}
}

// apply delivers one watched entry of another sentinel to the Watch functions.
func (d *KeyDirectory) apply(e jetstream.KeyValueEntry) {
	raw, ok := strings.CutPrefix(e.Key(), "k.")
	kidb, err := base64.RawURLEncoding.DecodeString(raw)
	if !ok || err != nil || len(kidb) == 0 {
		d.m.watchEvent("key_bad")
		return
	}
	kid := string(kidb)
	if e.Operation() != jetstream.KeyValuePut {
		d.applyDelete(kid, "")
		return
	}
	var k SharedKey
	if err := json.Unmarshal(e.Value(), &k); err != nil {
		d.m.watchEvent("key_bad")
		d.log.Warn("undecodable shared key; ignored", "kid", kid, "err", err)
		return
	}
	k.Kid = kid
	d.applyPut(k)
}

// applyDelete forgets kid; from, when set, is the sentinel that withdrew it, and a withdrawal
// by another sentinel than the entry's (the node moved since) is ignored.
func (d *KeyDirectory) applyDelete(kid, from string) {
	d.mu.Lock()
	prev, had := d.remote[kid]
	if had && from != "" && prev.Sentinel != from {
		had = false
	}
	if had {
		delete(d.remote, kid)
	}
	fns := d.fns
	d.mu.Unlock()
	if had {
		d.m.watchEvent("key_delete")
		for _, fn := range fns {
			fn(prev, true)
		}
	}
}

// applyPut delivers another sentinel's key. Our own entries are skipped (this sentinel's view
// of its keys is authoritative), and so are changes that change nothing (a refresh every
// DirectoryTTL/3, or the KV bringing what the subject brought already): they must not
// re-validate every key's certificate on every sentinel.
func (d *KeyDirectory) applyPut(k SharedKey) {
	if k.Sentinel == d.cfg.SentinelID {
		return
	}
	if err := k.Check(); err != nil {
		d.m.watchEvent("key_bad")
		d.log.Warn("shared key refused", "err", err)
		return
	}
	d.mu.Lock()
	if prev, ok := d.remote[k.Kid]; ok && prev.Sentinel == k.Sentinel && prev.Path == k.Path && bytes.Equal(prev.JWK, k.JWK) {
		d.mu.Unlock()
		return
	}
	d.remote[k.Kid] = k
	fns := d.fns
	d.mu.Unlock()
	d.m.watchEvent("key_put")
	for _, fn := range fns {
		fn(k, false)
	}
}

func deleteString(s []string, v string) []string {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
