package security

import "errors"

// Sentinel errors. Callers (sentinel, node) branch on these with errors.Is to decide between
// dropping an envelope, answering with a NACK, or asking for a key; the wrapping error carries
// the detail.
var (
	// ErrUnsigned: the envelope carries no sec.sig but the policy requires one.
	ErrUnsigned = errors.New("security: envelope is not signed")
	// ErrBadSignature: the signature does not verify, or the payload digest does not match pd.
	ErrBadSignature = errors.New("security: signature verification failed")
	// ErrUnknownKey: no key with the signature's kid (answer: KeyRequest, or queue).
	ErrUnknownKey = errors.New("security: unknown key id")
	// ErrSIDMismatch: the envelope sid differs from the sid of the key owner or certificate.
	ErrSIDMismatch = errors.New("security: envelope sid does not match signer identity")
	// ErrMissingSID: a signer was asked to sign an envelope without sid.
	ErrMissingSID = errors.New("security: envelope has no sid")
	// ErrBadSec: the sec header is malformed.
	ErrBadSec = errors.New("security: malformed sec header")
	// ErrBadJWK: a JWK is malformed or not acceptable for its use.
	ErrBadJWK = errors.New("security: invalid JWK")
	// ErrBadJWKS: a JWKS document cannot be decoded at all.
	ErrBadJWKS = errors.New("security: malformed JWKS")
	// ErrCanonical: a value cannot be put into canonical JSON form.
	ErrCanonical = errors.New("security: cannot canonicalise JSON")

	// ErrUnknownChannel: sec.enc names a channel id this side does not hold.
	ErrUnknownChannel = errors.New("security: unknown channel")
	// ErrDecrypt: ciphertext, nonce or key material is wrong (tampering or wrong key).
	ErrDecrypt = errors.New("security: decryption failed")
	// ErrReplay: an envelope id was seen before within the replay window.
	ErrReplay = errors.New("security: replayed envelope")
	// ErrStale: an envelope's ts is missing or outside the replay window.
	ErrStale = errors.New("security: envelope outside the replay window")
	// ErrBadAlgorithm: an unsupported encryption or channel algorithm was requested.
	ErrBadAlgorithm = errors.New("security: unsupported algorithm")
	// ErrChannelExhausted: the channel passed its lifetime or message budget and must be rekeyed.
	ErrChannelExhausted = errors.New("security: channel needs rekey")

	// ErrBadProfile / ErrBadLevel: configuration names that are not recognised.
	ErrBadProfile = errors.New("security: unknown security profile")
	ErrBadLevel   = errors.New("security: unknown encryption level")

	// Certificate errors (strict-overlay).
	ErrBadCertificate = errors.New("security: invalid node certificate")
	ErrUntrustedCert  = errors.New("security: certificate does not chain to the trust bundle")
	ErrCertExpired    = errors.New("security: certificate is outside its validity period")
)
