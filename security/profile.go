package security

import (
	"fmt"
	"strings"
)

// Profile is a reference security profile name (security.md §2.1).
type Profile string

const (
	ProfileOpen            Profile = "open"
	ProfileGated           Profile = "gated"
	ProfileGatedCallback   Profile = "gated-callback"
	ProfileOverlay         Profile = "overlay"
	ProfileOverlayCallback Profile = "overlay-callback"
	ProfileStrictOverlay   Profile = "strict-overlay"
)

// Level is an encryption level; the order is plaintext < channel < sealed.
type Level int

const (
	LevelPlaintext Level = iota
	LevelChannel
	LevelSealed
)

func (l Level) String() string {
	switch l {
	case LevelPlaintext:
		return "plaintext"
	case LevelChannel:
		return "channel"
	case LevelSealed:
		return "sealed"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel accepts exactly the three names FAME_DEFAULT_ENCRYPTION_LEVEL accepts
// (case-insensitive, surrounding space ignored).
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "plaintext":
		return LevelPlaintext, nil
	case "channel":
		return LevelChannel, nil
	case "sealed":
		return LevelSealed, nil
	}
	return 0, fmt.Errorf("%w: %q (want plaintext, channel or sealed)", ErrBadLevel, s)
}

// ParseProfile lower-cases and validates a profile name. The empty name is open, which is
// what the reference's config templates (${env:FAME_SECURITY_PROFILE:open}) give.
func ParseProfile(s string) (Profile, error) {
	p := Profile(strings.ToLower(strings.TrimSpace(s)))
	switch p {
	case "":
		return ProfileOpen, nil
	case ProfileOpen, ProfileGated, ProfileGatedCallback, ProfileOverlay, ProfileOverlayCallback, ProfileStrictOverlay:
		return p, nil
	}
	return "", fmt.Errorf("%w: %q", ErrBadProfile, s)
}

// base folds the callback variants onto the profile whose matrix they share.
func (p Profile) base() Profile {
	switch p {
	case ProfileGatedCallback:
		return ProfileGated
	case ProfileOverlayCallback:
		return ProfileOverlay
	}
	return p
}

// Origin is where an envelope entered this node.
type Origin int

const (
	OriginLocal Origin = iota
	OriginDownstream
	OriginUpstream
	OriginPeer
)

// criticalFrames must be signed whatever the inbound signature policy says.
var criticalFrames = map[string]bool{"KeyRequest": true, "KeyAnnounce": true, "SecureOpen": true, "SecureAccept": true}

// IsCriticalFrame reports whether the reference always requires a signature on frameType.
func IsCriticalFrame(frameType string) bool { return criticalFrames[frameType] }

// VerifiesSignatures reports whether inbound signatures are required and checked (overlay,
// strict-overlay). gated has a policy with signature checking disabled; open has none.
func (p Profile) VerifiesSignatures() bool {
	b := p.base()
	return b == ProfileOverlay || b == ProfileStrictOverlay
}

// SignsOutbound reports whether the node signs every envelope it originates (except the
// attach handshake and NodeAttachAck/NodeHeartbeatAck).
func (p Profile) SignsOutbound() bool { return p.VerifiesSignatures() }

// RequiresSignature reports whether an inbound envelope of frameType from origin must carry a
// signature. Local origin never needs one; NodeAttach and NodeHeartbeat never do; the
// critical frames always do when the profile has a security policy (everything but open);
// everything else does under overlay and strict-overlay.
func (p Profile) RequiresSignature(frameType string, origin Origin) bool {
	if origin == OriginLocal || p.base() == ProfileOpen {
		return false
	}
	switch frameType {
	case "NodeAttach", "NodeHeartbeat":
		return false
	}
	return criticalFrames[frameType] || p.VerifiesSignatures()
}

// AllowsEncryption reports whether inbound traffic at level is accepted. open accepts
// anything (it does not look); gated and overlay accept plaintext only; strict-overlay all.
func (p Profile) AllowsEncryption(level Level) bool {
	switch p.base() {
	case ProfileOpen, ProfileStrictOverlay:
		return true
	}
	return level == LevelPlaintext
}

// DefaultEncryptionLevel is the outbound level for Data frames with no configuration:
// channel for strict-overlay (ADV HEAD), plaintext otherwise.
func (p Profile) DefaultEncryptionLevel() Level {
	if p.base() == ProfileStrictOverlay {
		return LevelChannel
	}
	return LevelPlaintext
}

// KeyExchange reports whether nodes exchange keys (NodeAttach keys, KeyRequest/KeyAnnounce).
func (p Profile) KeyExchange() bool { return p.VerifiesSignatures() }

// SigningMaterial is "x509-chain" for strict-overlay and "raw-key" otherwise.
func (p Profile) SigningMaterial() string {
	if p.base() == ProfileStrictOverlay {
		return "x509-chain"
	}
	return "raw-key"
}

// RequireCertSIDMatch: the certificate's SPIFFE sid must equal envelope.sid (strict-overlay).
func (p Profile) RequireCertSIDMatch() bool { return p.base() == ProfileStrictOverlay }

// AuthorizerProfile is the default authorization profile (FAME_AUTHORIZATION_PROFILE overrides).
func (p Profile) AuthorizerProfile() string {
	switch p {
	case ProfileOpen:
		return "noop"
	case ProfileGated:
		return "oauth2-gated"
	case ProfileGatedCallback, ProfileOverlayCallback:
		return "oauth2-callback"
	case ProfileOverlay:
		return "oauth2"
	case ProfileStrictOverlay:
		return "jwt"
	}
	return "noop"
}

// Settings is the resolved security configuration of one node.
type Settings struct {
	Profile      Profile
	DefaultLevel Level // outbound level for Data frames
}

// Resolve resolves a profile name and an encryption level name (FAME_SECURITY_PROFILE and
// FAME_DEFAULT_ENCRYPTION_LEVEL; package config reads those) into Settings. As in the
// reference, the level only has an effect under strict-overlay; a misspelt value is an error
// under every profile.
func Resolve(profile, level string) (Settings, error) {
	p, err := ParseProfile(profile)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{Profile: p, DefaultLevel: p.DefaultEncryptionLevel()}
	if v := level; v != "" {
		l, err := ParseLevel(v)
		if err != nil {
			return Settings{}, err
		}
		if p.base() == ProfileStrictOverlay {
			s.DefaultLevel = l
		}
	}
	return s, nil
}
