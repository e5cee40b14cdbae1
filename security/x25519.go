package security

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/hkdf"
)

// X25519KeyPair is a static or ephemeral X25519 key.
type X25519KeyPair struct {
	Private []byte // 32 bytes
	Public  []byte // 32 bytes
}

const x25519Size = 32

// NewX25519Key draws a key from r (crypto/rand when nil). The 32 private bytes are read from r
// directly (not through ecdh.GenerateKey) so that a deterministic r reproduces test vectors.
func NewX25519Key(r io.Reader) (X25519KeyPair, error) {
	kp, _, err := newX25519Key(r)
	return kp, err
}

func newX25519Key(r io.Reader) (X25519KeyPair, *ecdh.PrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	priv := make([]byte, x25519Size)
	if _, err := io.ReadFull(r, priv); err != nil {
		return X25519KeyPair{}, nil, fmt.Errorf("x25519 key: %w", err)
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return X25519KeyPair{}, nil, fmt.Errorf("x25519 key: %w", err)
	}
	return X25519KeyPair{Private: priv, Public: k.PublicKey().Bytes()}, k, nil
}

// X25519FromPrivate derives the public half of a 32-byte private key.
func X25519FromPrivate(priv []byte) (X25519KeyPair, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return X25519KeyPair{}, fmt.Errorf("x25519 key: %w", err)
	}
	return X25519KeyPair{Private: priv, Public: k.PublicKey().Bytes()}, nil
}

// deriveKey is X25519 followed by HKDF-SHA256 with no salt and the given info, 32 bytes out.
// Parsing priv costs a scalar multiplication of its own (ecdh computes the public key), so
// callers holding an *ecdh.PrivateKey use deriveKeyWith.
func deriveKey(priv, peerPub []byte, info string) ([]byte, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: key agreement: %v", ErrDecrypt, err)
	}
	return deriveKeyWith(k, peerPub, info)
}

// deriveKeyWith does one scalar multiplication. ECDH rejects low-order peer keys (all-zero
// shared secret), as curve25519.X25519 did.
func deriveKeyWith(priv *ecdh.PrivateKey, peerPub []byte, info string) ([]byte, error) {
	peer, err := ecdh.X25519().NewPublicKey(peerPub)
	if err != nil {
		return nil, fmt.Errorf("%w: key agreement: %v", ErrDecrypt, err)
	}
	shared, err := priv.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: key agreement: %v", ErrDecrypt, err)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared, nil, []byte(info)), key); err != nil {
		return nil, err
	}
	return key, nil
}

// staticKeys caches parsed recipient keys for Open, which is always called with a node's
// long-lived encryption key: parsing it on every message doubled the cost of opening. Bounded,
// so a caller cycling through many keys only loses the speed-up.
var staticKeys struct {
	sync.RWMutex
	m map[[x25519Size]byte]*ecdh.PrivateKey
}

const maxStaticKeys = 16

func staticX25519Key(priv []byte) (*ecdh.PrivateKey, error) {
	if len(priv) != x25519Size {
		return ecdh.X25519().NewPrivateKey(priv) // gives the length error
	}
	id := [x25519Size]byte(priv)
	staticKeys.RLock()
	k, ok := staticKeys.m[id]
	staticKeys.RUnlock()
	if ok {
		return k, nil
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	staticKeys.Lock()
	if staticKeys.m == nil {
		staticKeys.m = make(map[[x25519Size]byte]*ecdh.PrivateKey)
	}
	if len(staticKeys.m) < maxStaticKeys {
		staticKeys.m[id] = k
	}
	staticKeys.Unlock()
	return k, nil
}
