package ca

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fame-go/fame/admission/jose"
)

// File names written by InitCA (the reference's setup_pki layout).
const (
	RootCertFile          = "root-ca.crt"
	RootKeyFile           = "root-ca.key"
	IntermediateCertFile  = "intermediate-ca.crt"
	IntermediateKeyFile   = "intermediate-ca.key"
	IntermediateChainFile = "intermediate-chain.crt"
	CompleteChainFile     = "complete-chain.crt"
)

// InitCA loads the development CA in dir, creating whatever is missing: a
// root (if neither root file exists) and an intermediate signed by it.
// Existing files are never overwritten. Keys are written with mode 0600.
func InitCA(dir string) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: create %s: %w", dir, err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	now := time.Now()

	root, rootKey, err := loadPair(p(RootCertFile), p(RootKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		var k crypto.Signer
		k, root, err = newRoot(now)
		if err == nil {
			rootKey = k
			err = writePair(p(RootCertFile), p(RootKeyFile), root, rootKey)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ca: root: %w", err)
	}

	inter, interKey, err := loadPair(p(IntermediateCertFile), p(IntermediateKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		var k crypto.Signer
		k, inter, err = newIntermediate(root, rootKey, now)
		if err == nil {
			interKey = k
			err = writePair(p(IntermediateCertFile), p(IntermediateKeyFile), inter, interKey)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ca: intermediate: %w", err)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("%w: %s is not signed by %s: %v", ErrBadMaterial, IntermediateCertFile, RootCertFile, err)
	}
	for name, body := range map[string][]byte{
		IntermediateChainFile: certPEM(inter),
		CompleteChainFile:     certPEM(inter, root),
	} {
		if err := writeIfMissing(p(name), body, 0o644); err != nil {
			return nil, err
		}
	}
	return NewAuthority(root, inter, interKey, []*x509.Certificate{inter})
}

// loadPair returns fs.ErrNotExist only when both files are absent; one
// without the other is an error, not a reason to mint a new CA.
func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	cb, cerr := os.ReadFile(certPath)
	kb, kerr := os.ReadFile(keyPath)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		return nil, nil, fs.ErrNotExist
	case cerr != nil:
		return nil, nil, fmt.Errorf("read %s: %w", certPath, cerr)
	case kerr != nil:
		return nil, nil, fmt.Errorf("read %s: %w", keyPath, kerr)
	}
	certs, err := ParseCertsPEM(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := ParseKeyPEM(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !publicKeysEqual(certs[0].PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("%w: %s does not match %s", ErrBadMaterial, keyPath, certPath)
	}
	return certs[0], key, nil
}

func writePair(certPath, keyPath string, cert *x509.Certificate, key crypto.Signer) error {
	if err := jose.WritePrivateKeyPEM(keyPath, key); err != nil {
		return err
	}
	return writeIfMissing(certPath, certPEM(cert), 0o644)
}

func writeIfMissing(path string, body []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ca: create %s: %w", path, err)
	}
	if _, err := f.Write(body); err != nil {
		_ = f.Close()
		return fmt.Errorf("ca: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ca: close %s: %w", path, err)
	}
	return nil
}
