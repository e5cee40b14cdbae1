package security

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fame-go/fame/envelope"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

// StoredKey is a public key with the identity of its owner.
type StoredKey struct {
	JWK          JWK // includes SID and PhysicalPath, ready to re-serve in a KeyAnnounce
	PhysicalPath string
	SID          string                 // SIDForPath(PhysicalPath): the sid the signatures must use
	Sig          ed25519.PublicKey      // set for signing keys
	Identity     *NodeIdentity          // set when an x5c chain was validated against the trust bundle
	sigExp       *voi.ExpandedPublicKey // Sig expanded once, for the verifications (ed25519.go)
}

// KeyStoreOptions configure certificate handling (strict-overlay).
type KeyStoreOptions struct {
	// Trust is the FAME_CA_CERTS bundle. When set, keys carrying x5c must chain to it, the
	// certificate sid must equal the sid of the path the key is registered under, and the
	// leaf key must equal x. When nil, x5c is not checked (reference behaviour without
	// FAME_CA_CERTS) and x is used.
	Trust *x509bundle.Bundle
	// Now is the clock for certificate validity (default time.Now).
	Now func() time.Time
}

// KeyStore maps kid to public key and owner (sid, physical path). It is the sentinel's key
// directory: filled from NodeAttach keys and KeyAnnounce frames, read to verify signatures
// and to answer KeyRequests. Safe for concurrent use.
type KeyStore struct {
	opts      KeyStoreOptions
	mu        sync.RWMutex
	byKid     map[string]*StoredKey
	byPathUse map[[2]string]string // (physical path, use) -> kid
}

// NewKeyStore returns an empty store.
func NewKeyStore(opts KeyStoreOptions) *KeyStore {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &KeyStore{opts: opts, byKid: map[string]*StoredKey{}, byPathUse: map[[2]string]string{}}
}

// Add validates j and stores it as owned by the node at physicalPath. As in the reference, a
// new key with the same (path, use) as an existing key with another kid replaces it.
func (ks *KeyStore) Add(j JWK, physicalPath string) error {
	if err := j.Validate(); err != nil {
		return err
	}
	if physicalPath == "" {
		return fmt.Errorf("%w: kid %q: no owner path", ErrBadJWK, j.Kid)
	}
	sk := &StoredKey{PhysicalPath: physicalPath, SID: SIDForPath(physicalPath)}
	j.SID, j.PhysicalPath = sk.SID, physicalPath
	if j.Use == "sig" && j.Crv == "Ed25519" {
		pub, err := j.Ed25519()
		if err != nil {
			return err
		}
		sk.Sig, sk.sigExp = pub, expandKey(pub)
		if len(j.X5C) > 0 && ks.opts.Trust != nil {
			id, err := VerifyX5C(j.X5C, ks.opts.Trust, sk.SID, ks.opts.Now())
			if err != nil {
				return fmt.Errorf("kid %q: %w", j.Kid, err)
			}
			if !id.PublicKey.Equal(pub) {
				return fmt.Errorf("%w: kid %q: x does not match the certificate key", ErrBadJWK, j.Kid)
			}
			sk.Identity = id
		}
	}
	sk.JWK = j
	ks.mu.Lock()
	defer ks.mu.Unlock()
	pu := [2]string{physicalPath, j.Use}
	if old, ok := ks.byPathUse[pu]; ok && old != j.Kid {
		delete(ks.byKid, old)
	}
	if prev, ok := ks.byKid[j.Kid]; ok && prev.PhysicalPath != physicalPath {
		delete(ks.byPathUse, [2]string{prev.PhysicalPath, prev.JWK.Use})
	}
	ks.byKid[j.Kid] = sk
	ks.byPathUse[pu] = j.Kid
	return nil
}

// AddRaw parses and adds every JWK in keys (NodeAttach.keys, KeyAnnounce.keys). Invalid keys
// are skipped, as the reference does, and reported in the joined error.
func (ks *KeyStore) AddRaw(keys []json.RawMessage, physicalPath string) (added int, err error) {
	var errs []error
	for _, raw := range keys {
		j, perr := ParseJWK(raw)
		if perr == nil {
			perr = ks.Add(j, physicalPath)
		}
		if perr != nil {
			errs = append(errs, perr)
			continue
		}
		added++
	}
	return added, errors.Join(errs...)
}

// Get returns the key with kid.
func (ks *KeyStore) Get(kid string) (*StoredKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	k, ok := ks.byKid[kid]
	return k, ok
}

// EncryptionKey returns the X25519 key stored for physicalPath (sealed encryption, KeyRequest
// by address).
func (ks *KeyStore) EncryptionKey(physicalPath string) (JWK, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	kid, ok := ks.byPathUse[[2]string{physicalPath, "enc"}]
	if !ok {
		return JWK{}, false
	}
	return ks.byKid[kid].JWK, true
}

// Remove deletes one key.
func (ks *KeyStore) Remove(kid string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k, ok := ks.byKid[kid]; ok {
		delete(ks.byPathUse, [2]string{k.PhysicalPath, k.JWK.Use})
		delete(ks.byKid, kid)
	}
}

// RemovePath deletes every key owned by physicalPath (a child detached). It returns how many
// keys were removed.
func (ks *KeyStore) RemovePath(physicalPath string) int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	n := 0
	for kid, k := range ks.byKid {
		if k.PhysicalPath == physicalPath {
			delete(ks.byPathUse, [2]string{k.PhysicalPath, k.JWK.Use})
			delete(ks.byKid, kid)
			n++
		}
	}
	return n
}

// Len is the number of stored keys.
func (ks *KeyStore) Len() int {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return len(ks.byKid)
}

// Verify checks env's signature with the key named by sec.sig.kid. The signed sid is the one
// recorded for the key owner (reference behaviour); an envelope whose sid differs from it is
// refused with ErrSIDMismatch before any crypto. An expired certificate gives ErrCertExpired.
// shallow selects the forwarding check (pd trusted, see VerifyShallow).
func (ks *KeyStore) Verify(env *envelope.Envelope, shallow bool) (*StoredKey, error) {
	sec, err := viewSec(env.Sec)
	if err != nil {
		return nil, err
	}
	if !sec.hasSig {
		return nil, ErrUnsigned
	}
	ks.mu.RLock()
	k, ok := ks.byKid[string(sec.kid)]
	ks.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownKey, sec.kid)
	}
	if k.Sig == nil {
		return nil, fmt.Errorf("%w: kid %s is not a signing key", ErrBadJWK, sec.kid)
	}
	if env.SID != k.SID {
		return nil, fmt.Errorf("%w: envelope sid %q, key %s belongs to %s (sid %s)", ErrSIDMismatch, env.SID, sec.kid, k.PhysicalPath, k.SID)
	}
	if k.Identity != nil && ks.opts.Now().After(k.Identity.NotAfter) {
		return nil, fmt.Errorf("%w: kid %s certificate expired %s", ErrCertExpired, sec.kid, k.Identity.NotAfter)
	}
	return k, verifyView(env, verifyKey{pub: k.Sig, exp: k.sigExp}, k.SID, shallow, sec)
}

// KeyAnnounceKeys returns what a sentinel puts in a KeyAnnounce answering a KeyRequest for
// kid: the owner's physical path and the stored JWK (with sid and physical_path).
func (ks *KeyStore) KeyAnnounceKeys(kid string) (physicalPath string, keys []json.RawMessage, err error) {
	k, ok := ks.Get(kid)
	if !ok {
		return "", nil, fmt.Errorf("%w: %s", ErrUnknownKey, kid)
	}
	b, err := json.Marshal(k.JWK)
	if err != nil {
		return "", nil, err
	}
	return k.PhysicalPath, []json.RawMessage{b}, nil
}
