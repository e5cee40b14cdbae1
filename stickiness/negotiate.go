package stickiness

import "github.com/fame-go/fame/security/aft"

// Stickiness modes exchanged in NodeAttach / NodeAttachAck.
const (
	ModeAFT  = "aft"
	ModeAttr = "attr"
)

// NegotiationVersion is the only stickiness negotiation version in use.
const NegotiationVersion = 1

// Stickiness is the `stickiness` object of NodeAttach (the replica's offer)
// and NodeAttachAck (the sentinel's answer). Pointers keep absent fields
// absent on the wire: an offer carries no `enabled`, an answer may.
type Stickiness struct {
	Mode           string   `json:"mode,omitempty"`
	SupportedModes []string `json:"supportedModes,omitempty"`
	Enabled        *bool    `json:"enabled,omitempty"`
	TTLSec         *int     `json:"ttlSec,omitempty"`
	Version        int      `json:"version"`
}

// Offer is what a replica sends in NodeAttach.
type Offer = Stickiness

// Answer is what the sentinel returns in NodeAttachAck.
type Answer = Stickiness

// Negotiate computes the sentinel's answer to a replica's offer, following
// the reference AFT load-balancer stickiness manager:
//
//   - no offer: {enabled:true, mode:"attr"} when enabled, else nil (omit);
//   - disabled: {enabled:false};
//   - offer includes "aft": {enabled:true, mode:"aft", ttlSec};
//   - else offer includes "attr": {enabled:true, mode:"attr"};
//   - else {enabled:false}.
//
// One deliberate difference: at level sid-only every AFT would be refused,
// so "aft" is not chosen there and the replica is spared minting tokens.
// The answer echoes the offer's version (default 1).
func Negotiate(cfg Config, offer *Offer) *Answer {
	if offer == nil {
		if !cfg.Enabled {
			return nil
		}
		return &Answer{Enabled: boolPtr(true), Mode: ModeAttr, Version: NegotiationVersion}
	}
	version := offer.Version
	if version <= 0 {
		version = NegotiationVersion
	}
	if !cfg.Enabled {
		return &Answer{Enabled: boolPtr(false), Version: version}
	}
	if offered(offer, ModeAFT) && cfg.SecurityLevel != aft.LevelSIDOnly {
		ttl := cfg.AdvertisedTTL
		if ttl <= 0 {
			ttl = DefaultAdvertisedTTL
		}
		sec := int(ttl.Seconds())
		return &Answer{Enabled: boolPtr(true), Mode: ModeAFT, TTLSec: &sec, Version: version}
	}
	if offered(offer, ModeAttr) {
		return &Answer{Enabled: boolPtr(true), Mode: ModeAttr, Version: version}
	}
	return &Answer{Enabled: boolPtr(false), Version: version}
}

func offered(o *Offer, mode string) bool {
	if o.Mode == mode {
		return true
	}
	for _, m := range o.SupportedModes {
		if m == mode {
			return true
		}
	}
	return false
}

func boolPtr(b bool) *bool { return &b }
