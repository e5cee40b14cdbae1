package security

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// X25519KeyPair is a static or ephemeral X25519 key.
type X25519KeyPair struct {
	Private []byte // 32 bytes
	Public  []byte // 32 bytes
}

// NewX25519Key draws a key from r (crypto/rand when nil).
func NewX25519Key(r io.Reader) (X25519KeyPair, error) {
	if r == nil {
		r = rand.Reader
	}
	priv := make([]byte, curve25519.ScalarSize)
	if _, err := io.ReadFull(r, priv); err != nil {
		return X25519KeyPair{}, fmt.Errorf("x25519 key: %w", err)
	}
	return X25519FromPrivate(priv)
}

// X25519FromPrivate derives the public half of a 32-byte private key.
func X25519FromPrivate(priv []byte) (X25519KeyPair, error) {
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		return X25519KeyPair{}, fmt.Errorf("x25519 key: %w", err)
	}
	return X25519KeyPair{Private: priv, Public: pub}, nil
}

// deriveKey is X25519 followed by HKDF-SHA256 with no salt and the given info, 32 bytes out.
// curve25519.X25519 rejects low-order peer keys (all-zero shared secret).
func deriveKey(priv, peerPub []byte, info string) ([]byte, error) {
	shared, err := curve25519.X25519(priv, peerPub)
	if err != nil {
		return nil, fmt.Errorf("%w: key agreement: %v", ErrDecrypt, err)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared, nil, []byte(info)), key); err != nil {
		return nil, err
	}
	return key, nil
}
