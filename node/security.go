package node

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// ErrUnknownKey: a reply was signed with a key the sentinel never announced after every
// KeyRequest attempt (the call fails instead of hanging, unlike the reference).
var ErrUnknownKey = errors.New("node: signing key of the sender is unknown")

// nodeSecurity is the node's part of the overlay profiles: its keys, the key directory it
// verifies with, channels and replay refusal. nil on open and gated nodes.
type nodeSecurity struct {
	profile  security.Profile
	level    security.Level
	signer   *security.Signer
	encKey   security.X25519KeyPair
	encKid   string
	keys     *security.KeyStore
	replay   *security.ReplayGuard
	channels *channels
	trust    *x509bundle.Bundle // FAME_CA_CERTS; required under strict-overlay

	// cert is the signing key's certificate chain (strict-overlay), x5c-encoded, and certGen
	// counts its renewals so a link can tell whether the sentinel has the current one.
	certMu   sync.Mutex
	x5c      []string
	certGen  uint64
	notAfter time.Time // of the leaf certificate; zero without one
}

// newNodeSecurity makes the node's per-process keys (ephemeral, as the reference's are).
func newNodeSecurity(cfg *Config) (*nodeSecurity, error) {
	p, err := security.ParseProfile(cfg.SecurityProfile)
	if err != nil {
		return nil, err
	}
	if !p.SignsOutbound() {
		return nil, nil
	}
	ns := &nodeSecurity{profile: p, level: p.DefaultEncryptionLevel()}
	if cfg.EncryptionLevel != "" {
		if ns.level, err = security.ParseLevel(cfg.EncryptionLevel); err != nil {
			return nil, err
		}
	}
	priv, err := security.NewNodeKey()
	if err != nil {
		return nil, fmt.Errorf("node: signing key: %w", err)
	}
	ns.signer = &security.Signer{Key: priv, Kid: envelope.NewID()}
	if ns.encKey, err = security.NewX25519Key(nil); err != nil {
		return nil, fmt.Errorf("node: encryption key: %w", err)
	}
	ns.encKid = envelope.NewID()
	if p.RequireCertSIDMatch() && cfg.Trust == nil {
		return nil, fmt.Errorf("node: security profile %s needs FAME_CA_CERTS (the CA bundle node certificates must chain to)", p)
	}
	ns.trust = cfg.Trust
	ns.keys = security.NewKeyStore(security.KeyStoreOptions{Trust: cfg.Trust})
	if ns.replay, err = security.NewReplayWindow(cfg.ReplayCacheSize, cfg.ReplayWindow, cfg.ReplayFutureSkew, nil); err != nil {
		return nil, err
	}
	ns.channels = newChannels(cfg.Channel)
	return ns, nil
}

// publicKeys are the public JWKs sent in NodeAttach.keys and KeyAnnounce (the signing one
// with the current x5c, when there is a certificate), the certificate generation they
// carry and when that certificate expires (zero without one).
func (ns *nodeSecurity) publicKeys() ([]json.RawMessage, uint64, time.Time) {
	ns.certMu.Lock()
	sj := security.SigningJWK(ns.signer.Key.Public().(ed25519.PublicKey), ns.signer.Kid)
	sj.X5C = ns.x5c
	gen, notAfter := ns.certGen, ns.notAfter
	ns.certMu.Unlock()
	// Marshalling these fixed shapes cannot fail.
	sig, _ := json.Marshal(sj)
	enc, _ := json.Marshal(security.EncryptionJWK(ns.encKey.Public, ns.encKid))
	return []json.RawMessage{sig, enc}, gen, notAfter
}

// setCertificate installs a (renewed) certificate chain for the signing key; it returns the
// new generation, or 0 when the chain is the one already installed.
func (ns *nodeSecurity) setCertificate(chain []*x509.Certificate) uint64 {
	x5c := make([]string, len(chain))
	for i, c := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	ns.certMu.Lock()
	defer ns.certMu.Unlock()
	if slices.Equal(x5c, ns.x5c) {
		return 0
	}
	ns.x5c = x5c
	ns.notAfter = time.Time{}
	if len(chain) > 0 {
		ns.notAfter = chain[0].NotAfter
	}
	ns.certGen++
	return ns.certGen
}

// stickinessOffer is what a pool replica offers in NodeAttach (security.md §8.2).
var stickinessOffer = json.RawMessage(`{"mode":"aft","supportedModes":["aft","attr"],"version":1}`)

// isReplica: the node requested a wildcard logical, so it joins pools and mints AFTs.
func isReplica(logicals []string) bool {
	for _, l := range logicals {
		if strings.HasPrefix(l, "*.") {
			return true
		}
	}
	return false
}

// aftEnabled reads the sentinel's stickiness answer: AFTs are minted only when it answered
// and neither disabled them nor chose another mode.
func aftEnabled(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	var st struct {
		Mode    string `json:"mode"`
		Enabled *bool  `json:"enabled"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return false
	}
	return (st.Enabled == nil || *st.Enabled) && (st.Mode == "" || st.Mode == "aft")
}

// sign signs an envelope this node originates (CreditUpdates have no sid and stay unsigned,
// as hop-local connector traffic).
func (ns *nodeSecurity) sign(env *envelope.Envelope) error {
	if env.SID == "" || env.FrameType() == envelope.TypeCreditUpdate {
		return nil
	}
	if err := ns.signer.Sign(env); err != nil {
		return fmt.Errorf("node: sign %s: %w", env.FrameType(), err)
	}
	return nil
}

// exempt lists what the sentinel sends unsigned: the attach answer, heartbeat acks and
// connector credit grants.
func exemptFromSignature(frameType string) bool {
	switch frameType {
	case envelope.TypeNodeAttachAck, envelope.TypeNodeHeartbeatAck, envelope.TypeCreditUpdate:
		return true
	}
	return false
}

// Nack codes of the reference's final-delivery checks (security.md §2.3).
const (
	codeSignatureRequired     = "signature_required"
	codeSignatureFailed       = "signature_verification_failed"
	codeCryptoLevelViolation  = "crypto_level_violation"
	codeChannelHandshakeError = "channel_handshake_failed"
)

// Reasons a reply is dropped on arrival, in the ErrReplyRefused a waiting call fails with.
const (
	codeChannelUnknown = "channel_unknown"
	codeDecryptFailed  = "decrypt_failed"
	codeKeyWaitFull    = "key_wait_full"
)

// Nack codes of this node's own refusals (no reference equivalent).
const (
	CodeReplay              = "REPLAY"               // envelope id seen before
	CodeStale               = "STALE"                // envelope ts outside the replay window
	CodeKeyAnnounceRefused  = "KEY_ANNOUNCE_REFUSED" // see onKeyAnnounce
	CodeHeartbeatAckRefused = "HEARTBEAT_ACK_REFUSED"
)
