// Package security is the FAME security layer and the module's one home for crypto and
// identity: profiles, canonical JSON and digests, Ed25519 envelope signatures, the key store,
// JWKs and JWKS (ParseSigningJWKS reads a token issuer's set), sealed and channel encryption,
// replay refusal, and node certificates: the reference OIDs, the trust domain, PEM parsing
// and SPIFFE node-certificate verification (strict-overlay; the admission CA issues with
// them). AFT tokens are its subpackage security/aft, a leaf. It
// is wire-compatible with the reference (security.md §§1-7, Appendix A vectors reproduced
// byte for byte; every signature in the TS overlay captures verifies). It does no I/O apart
// from LoadTrustBundle and starts no goroutines.
//
// Profiles. Resolve turns a profile and a level name (FAME_SECURITY_PROFILE and
// FAME_DEFAULT_ENCRYPTION_LEVEL, read by package config) into a Settings value; Profile answers the policy questions
// (RequiresSignature, SignsOutbound, AllowsEncryption, DefaultEncryptionLevel, ...).
//
// How the sentinel uses it. The sentinel never decrypts: sealed and channel payloads are
// end-to-end, it only routes them (EncLevel tells which kind an envelope carries, sec.enc.kid
// is the channel id it pins stickiness on). When Profile.RequiresSignature says so it calls
// KeyStore.Verify(env, true) — the shallow check that trusts pd, so it works on ciphertext —
// and drops the envelope on ErrUnsigned/ErrBadSignature/ErrSIDMismatch rather than killing
// the connection as the reference does. Keys enter the KeyStore from NodeAttach.keys (owner =
// the child's assigned path) and accepted KeyAnnounce frames; with a trust bundle
// (LoadTrustBundle(FAME_CA_CERTS)) x5c keys are chain-checked and bound to the owner's sid. It
// answers KeyRequest{kid} with KeyStore.KeyAnnounceKeys, KeyRequest{address} with
// KeyStore.EncryptionKey, removes a detached child's keys with RemovePath, and signs what it
// originates (acks, NACKs, KeyAnnounce) with a Signer.
//
// How a node uses it. It signs what it originates (Signer.Sign, before encrypting), verifies
// what it receives with KeyStore.Verify(env, false) after decrypting (pd is then recomputed),
// opens channels with NewChannelHandshake/AcceptChannel and keeps them in a ChannelTable,
// seals to a recipient's X25519 key with SealEnvelope/OpenEnvelope, refuses replays with a
// ReplayGuard, and in strict-overlay makes its key with NewNodeKey and asks the CA for a
// certificate with CreateCSR (issuing certificates is the admission package's job).
//
// Canonical JSON. Signatures and payload digests depend on a byte-exact canonical JSON: the
// Python reference's json.dumps(sort_keys, ensure_ascii=False, compact) with Python float
// repr. Numbers are kept as their wire text and then printed as Python would (see
// CanonicalJSON for the exact rules); verification also accepts a pd computed with
// JavaScript number printing, because the TS runtime signs that way.
//
// Cost. The canonicaliser is a single pass over the raw bytes (canonical.go, jsonstring.go,
// on the module's one JSON scanner internal/jsonscan, shared with package envelope) that
// accepts and decodes exactly what encoding/json does; scratch buffers come from the
// module's one pool (internal/bufpool); canonical_oracle_test.go keeps
// the earlier encoding/json-based implementation and the differential tests hold the two
// byte-identical. KeyStore.Verify(env, true) allocates nothing and costs about one Ed25519
// verification; Sign about one Ed25519 signature plus the payload digest; Seal two X25519
// multiplications, Open one (parsed recipient keys are cached). The benchmarks report
// cpu-ns/op next to wall time and floor benchmarks for the bare primitives.
package security
