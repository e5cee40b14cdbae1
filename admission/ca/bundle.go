package ca

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// trustBundle is the reference's /.well-known/naylence/trust-bundle.json.
type trustBundle struct {
	Version    int64         `json:"version"`
	IssuedAt   string        `json:"issuedAt"`
	ValidUntil string        `json:"validUntil"`
	Roots      []bundleEntry `json:"roots"`
}

type bundleEntry struct {
	PEM       string `json:"pem"`
	NotBefore string `json:"notBefore"`
	NotAfter  string `json:"notAfter"`
}

const bundleTime = "2006-01-02T15:04:05.000Z"

// trustBundleJSON renders the bundle and its ETag.
func (a *Authority) trustBundleJSON(now time.Time) ([]byte, string, error) {
	rootPEM := strings.TrimRight(string(a.RootPEM()), "\n")
	sum := sha256.Sum256([]byte(rootPEM))
	// Version = the first 12 hex digits of the digest as an integer: stable
	// for a given root set, as in the reference.
	v, err := strconv.ParseInt(hex.EncodeToString(sum[:])[:12], 16, 64)
	if err != nil {
		return nil, "", fmt.Errorf("ca: bundle version: %w", err)
	}
	b, err := json.Marshal(trustBundle{
		Version: v, IssuedAt: now.UTC().Format(bundleTime), ValidUntil: a.Root.NotAfter.UTC().Format(bundleTime),
		Roots: []bundleEntry{{PEM: string(a.RootPEM()), NotBefore: a.Root.NotBefore.UTC().Format(bundleTime),
			NotAfter: a.Root.NotAfter.UTC().Format(bundleTime)}},
	})
	if err != nil {
		return nil, "", fmt.Errorf("ca: encode bundle: %w", err)
	}
	etag := sha256.Sum256(b)
	return b, `"` + hex.EncodeToString(etag[:])[:16] + `"`, nil
}
