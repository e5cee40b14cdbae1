package sentinel

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// secLayer applies the security profile at the sentinel: it keeps the keys peers present at
// attach and in KeyAnnounce, verifies signatures where the profile requires them, answers
// KeyRequests, and signs what the sentinel originates. Under the open and gated profiles it is
// nil and every method is a no-op.
//
// The sentinel is the key directory of its fabric (security.md §5.5): TS peers learn each
// other's keys only by asking it, so it must hold every attached node's keys under the path it
// assigned, answer KeyRequest{kid} itself, and vouch (with its own signature) for the
// KeyAnnounce a replica returns to a KeyRequest{address}.
type secLayer struct {
	secDeps
	profile security.Profile
	signer  *security.Signer
	keys    *security.KeyStore
	ksOpts  security.KeyStoreOptions // trust bundle and clock, for scratch stores
	ownKeys []json.RawMessage        // the sentinel's public JWKs, as NodeAttachAck.keys

	// mu serialises key registration so that the kid-ownership check and the add are atomic,
	// and guards the ownership tables below.
	mu sync.Mutex
	// owner is the live connection that registered the keys of each physical path. A node
	// that re-attaches gets a new conn before the old one is torn down; without this the old
	// conn's teardown would delete the keys the new one just presented.
	owner map[string]peer
	paths map[peer][]string // every path c registered keys under (its own and announced ones)
	// sids holds, per connection, a *map[string]struct{} of the sids of the paths it owns keys
	// for: sidOwnedBy reads it without l.mu. Rebuilt (copy on write) under l.mu.
	sids sync.Map
	// idents is the certified identity of each attached node's signing key (strict-overlay):
	// binds are checked against the logicals its certificate grants (ownership.go).
	idents map[peer]*security.NodeIdentity

	corr *corrMap // KeyRequest{address} corrId -> requester, for re-wrapping the KeyAnnounce

	cl *secCluster // the cluster's key directory (seclayer_cluster.go); nil when not clustered
}

// Refusal codes sent in DeliveryAck nacks. The first two are the reference's final-delivery
// codes (security.md §2.3); KEY_NOT_FOUND is ours, so that a requester fails fast instead of
// retrying a kid nobody has.
const (
	codeSignatureRequired = envelope.CodeSignatureRequired
	codeSignatureFailed   = "signature_verification_failed"
	codeKeyNotFound       = "KEY_NOT_FOUND"
)

// errKeys marks attach refusals caused by the presented keys.
var errKeys = errors.New("refused")

// secDeps is what the security layer is built with.
type secDeps struct {
	opts    Options // SecurityProfile is read, at construction only
	path    string  // the sentinel's own path and sid: its keys, and what it signs
	sid     string
	log     *slog.Logger
	metrics *metrics
	// routes answers which node a KeyRequest{address} could have been routed to (serves).
	routes *routeTable
	limits *limiter // MaxKeys per connection
	refuse refuser
}

func newSecLayer(d secDeps) (*secLayer, error) {
	p, err := security.ParseProfile(string(d.opts.SecurityProfile))
	if err != nil {
		return nil, fmt.Errorf("sentinel: security profile: %w", err)
	}
	if !p.VerifiesSignatures() {
		return nil, nil
	}
	ksOpts := security.KeyStoreOptions{}
	if v := d.opts.TrustBundle; v != "" {
		b, err := security.LoadTrustBundle(v)
		if err != nil {
			return nil, fmt.Errorf("sentinel: %w", err)
		}
		ksOpts.Trust = b
	} else if p.RequireCertSIDMatch() {
		return nil, fmt.Errorf("sentinel: security profile %s needs FAME_CA_CERTS (the CA bundle node certificates must chain to)", p)
	}
	_, sigPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sentinel: signing key: %w", err)
	}
	encKey, err := security.NewX25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sentinel: encryption key: %w", err)
	}
	l := &secLayer{
		secDeps: d,
		profile: p,
		signer:  &security.Signer{Key: sigPriv, Kid: envelope.NewID()},
		keys:    security.NewKeyStore(ksOpts),
		ksOpts:  ksOpts,
		owner:   map[string]peer{},
		paths:   map[peer][]string{},
		idents:  map[peer]*security.NodeIdentity{},
		corr:    newCorrMap(corrMapSize, corrTTL),
	}
	sig := security.SigningJWK(sigPriv.Public().(ed25519.PublicKey), l.signer.Kid)
	enc := security.EncryptionJWK(encKey.Public, envelope.NewID())
	for _, j := range []security.JWK{sig, enc} {
		b, err := json.Marshal(j)
		if err != nil {
			return nil, fmt.Errorf("sentinel: encode own key: %w", err)
		}
		l.ownKeys = append(l.ownKeys, b)
		// The sentinel's own keys are in its directory too, so a node that missed the
		// NodeAttachAck keys can still ask for them by kid.
		if err := l.keys.Add(j, d.path); err != nil {
			return nil, fmt.Errorf("sentinel: register own key: %w", err)
		}
	}
	return l, nil
}

// attachKeys stores the keys a node presented in NodeAttach (under its assigned path). All
// keys are checked before any is stored, so a refused attach leaves the directory unchanged.
func (l *secLayer) attachKeys(c peer, na *envelope.NodeAttach) error {
	if l == nil {
		return nil
	}
	var accepted []security.JWK
	hasSig := false
	for i, raw := range na.Keys {
		j, err := security.ParseJWK(raw)
		if err != nil {
			if l.profile.RequireCertSIDMatch() {
				return fmt.Errorf("%w: keys[%d]: %v", errKeys, i, err)
			}
			// The reference skips invalid keys with a warning; so do we under overlay.
			c.logger().Warn("skipping invalid attach key", "index", i, "err", err)
			continue
		}
		if j.Use == "sig" {
			hasSig = true
			if l.profile.RequireCertSIDMatch() && len(j.X5C) == 0 {
				return fmt.Errorf("%w: signing key %s has no x5c certificate chain (%s requires one)", errKeys, j.Kid, l.profile)
			}
		}
		accepted = append(accepted, j)
	}
	if l.profile.RequireCertSIDMatch() && !hasSig {
		return fmt.Errorf("%w: %s requires a signing key with an x5c certificate chain", errKeys, l.profile)
	}
	if !hasSig {
		c.logger().Warn("node attached without a signing key; everything it sends will be refused", "profile", l.profile)
	}
	if err := l.register(c, c.ident().path, accepted); err != nil {
		if errors.Is(err, errKidOnPeer) {
			l.refuse.securityRefusal(c, refusalKidOnPeer, err.Error())
			return &attachRefusal{code: codeKidInUse, reason: err.Error()}
		}
		return err
	}
	for _, j := range accepted {
		if k, ok := l.keys.Get(j.Kid); ok && j.Use == "sig" && k.Identity != nil {
			l.mu.Lock()
			l.idents[c] = k.Identity
			l.mu.Unlock()
		}
	}
	return nil
}

// register validates (certificates included) and stores keys as owned by path on behalf of c.
// A kid already owned by another live path is refused: otherwise any node could take over
// another node's (or the sentinel's) kid and make its signatures fail.
func (l *secLayer) register(c peer, path string, keys []security.JWK) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkPeerKids(path, keys); err != nil {
		return err
	}
	for _, j := range keys {
		if prev, ok := l.keys.Get(j.Kid); ok && prev.PhysicalPath != path {
			if o := l.owner[prev.PhysicalPath]; prev.PhysicalPath == l.path || o != nil && o != c {
				return fmt.Errorf("%w: kid %s is already registered to %s", errKeys, j.Kid, prev.PhysicalPath)
			}
		}
	}
	fresh := 0
	for _, j := range keys {
		if prev, ok := l.keys.Get(j.Kid); !ok || prev.PhysicalPath != path {
			fresh++
		}
	}
	if err := l.limits.checkKeys(c, fresh); err != nil {
		return err
	}
	// Certificate checks happen in Add; run them on a scratch store first so that one bad key
	// refuses the whole set without leaving the others behind.
	scratch := security.NewKeyStore(l.ksOpts)
	for _, j := range keys {
		if err := scratch.Add(j, path); err != nil {
			return fmt.Errorf("%w: %v", errKeys, err)
		}
	}
	old := l.owner[path]
	if old != nil && old != c {
		// The path changes hands (re-attach): the old connection's keys go.
		l.keys.RemovePath(path)
	}
	for _, j := range keys {
		if err := l.keys.Add(j, path); err != nil {
			return fmt.Errorf("%w: %v", errKeys, err)
		}
	}
	if l.owner[path] != c {
		l.owner[path] = c
		l.paths[c] = append(l.paths[c], path)
		l.rebuildSIDs(c)
		if old != nil {
			l.rebuildSIDs(old)
		}
	}
	c.keyCount().Add(int32(fresh))
	l.publishLocked(keys, path)
	return nil
}

// ackKeys returns the sentinel's own public keys for NodeAttachAck (nil when none).
func (l *secLayer) ackKeys() []json.RawMessage {
	if l == nil {
		return nil
	}
	return l.ownKeys
}

// signOwn signs an envelope the sentinel originates, when the profile signs.
func (l *secLayer) signOwn(e *envelope.Envelope) {
	if l == nil {
		return
	}
	if e.SID == "" {
		e.SID = l.sid
	}
	if err := l.signer.Sign(e); err != nil {
		// Only a malformed frame of our own making can get here; send it unsigned and say so.
		l.log.Error("signing own envelope", "frame", e.FrameType(), "err", err)
	}
}

// forget drops the keys of a detached node, unless a newer connection of the same node has
// taken its path over already.
func (l *secLayer) forget(c peer) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	removed := 0
	for _, p := range l.paths[c] {
		if l.owner[p] == c {
			removed += l.keys.RemovePath(p)
			delete(l.owner, p)
			l.withdrawPathLocked(p)
		}
	}
	delete(l.paths, c)
	l.sids.Delete(c)
	delete(l.idents, c)
	if removed > 0 {
		c.logger().Debug("node keys removed", "keys", removed)
	}
}
