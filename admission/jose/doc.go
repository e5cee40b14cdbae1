// Package jose holds the Ed25519 signing keys of the admission services (dev
// OAuth2 server, welcome service, CA grants): key files, key ids, JWT
// signing and the JWKS they serve. The JWK and JWKS types, and the parsing of
// a served JWKS by verifiers (security.ParseSigningJWKS), are package
// security's.
//
// A key is either ephemeral (new per process, as in the reference) or
// persisted as a PKCS#8 PEM file with mode 0600, so that tokens issued before
// a restart stay verifiable. The key id is the RFC 7638 thumbprint of the
// public key: stable for a persisted key, and a JWKS consumer can tell two
// keys apart without any shared state.
package jose
