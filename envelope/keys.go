package envelope

import (
	"bytes"
	"fmt"
)

// One parse. The sentinel routes on ParseHeader, signatures are checked over what Decode (and
// security's sec reader) saw, and receivers decode again with encoding/json or the reference's
// parsers. Those parsers resolve a repeated key differently (first wins, last wins), spell keys
// differently (the decoder accepts both replyTo and reply_to, a "t\u006f" key is "to" once
// unescaped) and encoding/json matches struct fields regardless of letter case. Any message on
// which two of them could disagree is refused here, by code that ParseHeader and Decode share:
//
//   - the envelope: no key twice, compared unescaped and with every alias pair as one key;
//   - frame, sec, sec.sig, sec.enc, meta and meta.set (AFT): no key twice, compared unescaped;
//   - in those objects a key that differs only in letter case from a name some decoder reads
//     ("Cid", "SIG", "Aft") is refused too, since encoding/json would read it as that name and
//     the reference (and our exact-key scanners) would not.
//
// The check is a bitmask over the known names of each object plus a small array for other
// keys, so the common message costs no allocation; a key with escapes is unescaped first (a
// copy, rare: no reference peer escapes ASCII keys).

// Top-level envelope keys, one bit per key with aliases sharing a bit.
const (
	kVersion uint32 = 1 << iota
	kID
	kSID
	kTraceID
	kTo
	kReplyTo
	kCapabilities
	kRType
	kCorrID
	kFlowID
	kSeqID
	kFlowFlags
	kTTL
	kPriority
	kFrame
	kTS
	kSec
	kAFT
	kMeta
)

// topKey returns the bit of a (unescaped) top-level key, 0 for keys this version does not
// know. Decode and ParseHeader both dispatch on it, so they accept the same spellings.
func topKey(k []byte) uint32 {
	switch string(k) {
	case "version":
		return kVersion
	case "id":
		return kID
	case "sid":
		return kSID
	case "traceId", "trace_id":
		return kTraceID
	case "to":
		return kTo
	case "replyTo", "reply_to":
		return kReplyTo
	case "capabilities":
		return kCapabilities
	case "rtype":
		return kRType
	case "corrId", "corr_id":
		return kCorrID
	case "flowId", "flow_id":
		return kFlowID
	case "seqId", "seq_id":
		return kSeqID
	case "flowFlags", "flow_flags":
		return kFlowFlags
	case "ttl":
		return kTTL
	case "priority":
		return kPriority
	case "frame":
		return kFrame
	case "ts":
		return kTS
	case "sec":
		return kSec
	case "aft":
		return kAFT
	case "meta":
		return kMeta
	}
	return 0
}

// scope names the keys of one nested object that get bits; the first nCase of them are read by
// some decoder through encoding/json (case-insensitive), so their case variants are refused.
type scope struct {
	where string
	names []string
	nCase int
}

// Frame keys: the ones the router reads first (type, cid, address, flowId, credits), then the
// rest of a Data frame so that the common frame needs no unknown-key bookkeeping.
var (
	frameScope   = scope{"frame", []string{"type", "cid", "address", "flowId", "credits", "payload", "codec", "pd", "fid", "nonce"}, 5}
	secScope     = scope{"sec", []string{"sig", "enc"}, 2}
	sigScope     = scope{"sec.sig", []string{"kid", "val", "alg"}, 3}
	encScope     = scope{"sec.enc", []string{"alg", "kid", "val"}, 3}
	metaScope    = scope{"meta", []string{"set", "set.aft"}, 2}
	metaSetScope = scope{"meta.set", []string{"aft"}, 1}
)

// Bit indexes into the scopes above.
const (
	fType = 1 << iota
	fCID
	fAddress
	fFlowID
	fCredits
)

const (
	sSig = 1 << iota
	sEnc
)

const (
	mSet = 1 << iota
	mSetAFT
)

// classify returns the bit of k in the scope (0 for other keys), or an error for a case
// variant of a name that is read through encoding/json.
func (s *scope) classify(k []byte) (uint32, error) {
	for i, n := range s.names {
		if len(n) == len(k) && string(k) == n {
			return 1 << i, nil
		}
	}
	for _, n := range s.names[:s.nCase] {
		if bytes.EqualFold(k, []byte(n)) {
			return 0, fmt.Errorf("%w: %s key %q (expected %q)", ErrAmbiguousKey, s.where, k, n)
		}
	}
	return 0, nil
}

// keySet records the keys seen in one object.
type keySet struct {
	known uint32
	n     int
	small [8][]byte
	big   map[string]struct{}
}

// add records key k with bit (0: an unknown key, compared by its bytes) and fails if it was
// already seen. k must be unescaped.
func (s *keySet) add(where string, k []byte, bit uint32) error {
	if bit != 0 {
		if s.known&bit != 0 {
			return dupErr(where, k)
		}
		s.known |= bit
		return nil
	}
	if s.big != nil {
		if _, ok := s.big[string(k)]; ok {
			return dupErr(where, k)
		}
		s.big[string(k)] = struct{}{}
		return nil
	}
	for _, seen := range s.small[:s.n] {
		if bytes.Equal(seen, k) {
			return dupErr(where, k)
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = k
		s.n++
		return nil
	}
	// Many unknown keys: not what peers send, but legal; switch to a map so that a hostile
	// object with thousands of keys costs linear time.
	s.big = make(map[string]struct{}, 2*len(s.small))
	for _, seen := range s.small {
		s.big[string(seen)] = struct{}{}
	}
	s.big[string(k)] = struct{}{}
	return nil
}

func dupErr(where string, k []byte) error {
	return fmt.Errorf("%w %q in %s", ErrDuplicateKey, k, where)
}

// key returns the member's key unescaped; a copy only when it had escapes.
func (m member) unescapedKey() []byte {
	if !m.keyEscaped {
		return m.key
	}
	return []byte(m.keyString())
}

// eachKnown walks the object at b[at] with the duplicate and case checks of sc, calling fn
// with each member and its bit (0 for keys outside the scope).
func eachKnown(b []byte, at, depth int, sc *scope, fn func(m member, bit uint32) error) (int, error) {
	var seen keySet
	return eachMember(b, at, depth, func(m member) error {
		k := m.unescapedKey()
		bit, err := sc.classify(k)
		if err != nil {
			return err
		}
		if err := seen.add(sc.where, k, bit); err != nil {
			return err
		}
		return fn(m, bit)
	})
}

// frameHeader is what the router reads from a frame.
type frameHeader struct {
	typ, cid, address, flowID []byte
	credits                   int64
}

// parseFrameHeader reads the routing members of the frame object at b[at] (ParseHeader) and is
// the frame check of Decode and ParseFrame, so all three agree on which frames exist.
func parseFrameHeader(b []byte, at, depth int, f *frameHeader) error {
	if at >= len(b) || b[at] != '{' {
		return ErrFieldType
	}
	_, err := eachKnown(b, at, depth, &frameScope, func(m member, bit uint32) error {
		v := b[m.valStart:m.valEnd]
		var err error
		switch bit {
		case fType:
			f.typ, err = strBytes(v)
		case fCID:
			f.cid, err = strBytes(v)
		case fAddress:
			f.address, err = strBytes(v)
		case fFlowID:
			f.flowID, err = strBytes(v)
		case fCredits:
			f.credits, err = optInt(v)
		}
		if err != nil {
			return fmt.Errorf("frame.%s: %w", m.unescapedKey(), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(f.typ) == 0 {
		return ErrMissingFrameType
	}
	return nil
}

// secHeader is what the router reads from sec.
type secHeader struct {
	hasSig bool
	encKID []byte
}

// parseSecHeader checks the sec object at b[at] (and its sig and enc objects) and reads what
// the router needs. null is no sec.
func parseSecHeader(b []byte, at, depth int, s *secHeader) error {
	if isNull(b[at:min(at+4, len(b))]) {
		return nil
	}
	if b[at] != '{' {
		return fmt.Errorf("sec: %w", ErrFieldType)
	}
	_, err := eachKnown(b, at, depth, &secScope, func(m member, bit uint32) error {
		switch bit {
		case sSig:
			s.hasSig = b[m.valStart] == '{'
			if s.hasSig {
				_, err := eachKnown(b, m.valStart, depth+1, &sigScope, func(member, uint32) error { return nil })
				return err
			}
		case sEnc:
			if b[m.valStart] != '{' {
				return nil
			}
			_, err := eachKnown(b, m.valStart, depth+1, &encScope, func(k member, bit uint32) error {
				if bit != 1<<1 { // kid
					return nil
				}
				var err error
				if s.encKID, err = strBytes(b[k.valStart:k.valEnd]); err != nil {
					return fmt.Errorf("sec.enc.kid: %w", err)
				}
				return nil
			})
			return err
		}
		return nil
	})
	return err
}

// CheckSec applies the sec rules (no key twice in sec, sec.sig or sec.enc; no case variants of
// sig, enc, kid, val, alg) to a raw sec header, for decoders outside this package that read it
// with encoding/json.
func CheckSec(raw []byte) error {
	i := skipWS(raw, 0)
	if i >= len(raw) {
		return nil
	}
	if err := checkInput(raw); err != nil {
		return err
	}
	var s secHeader
	return parseSecHeader(raw, i, 0, &s)
}

// checkMeta checks the meta object at b[at]: its keys and those of meta.set, where replicas
// put AFTs. Deeper levels are the user's and are left alone. null is no meta.
func checkMeta(b []byte, at, depth int) error {
	if isNull(b[at:min(at+4, len(b))]) {
		return nil
	}
	if b[at] != '{' {
		return fmt.Errorf("meta: %w", ErrFieldType)
	}
	_, err := eachKnown(b, at, depth, &metaScope, func(m member, bit uint32) error {
		if bit == mSet && b[m.valStart] == '{' {
			_, err := eachKnown(b, m.valStart, depth+1, &metaSetScope, func(member, uint32) error { return nil })
			return err
		}
		return nil
	})
	return err
}
