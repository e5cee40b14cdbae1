package envelope

import (
	"bytes"
	"fmt"

	"github.com/fame-go/fame/internal/jsonscan"
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
//     the reference (and our exact-key scanners) would not; in the frame object that is any
//     field of any frame type ("PhysicalPath", framefold.go), since ParseFrame reads every
//     frame but Data with encoding/json;
//   - an AFT key in meta written with escapes is refused (the sentinel's AFT shortcut looks for
//     the plain bytes).
//
// The check is a bitmask over the known names of each object plus a small array for other
// keys, so the common message costs no allocation; a key with escapes is unescaped first (a
// copy, rare: no reference peer escapes ASCII keys).

// Top-level envelope keys, one index per key with aliases sharing it (0: unknown). The
// index is dense so that the dispatch on it compiles to a jump table; 1<<index is its bit.
const (
	kUnknown = iota
	kVersion
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

// topNames lists every top-level key Decode knows, with its index; aliases share one.
var topNames = []struct {
	name string
	idx  uint8
}{
	{"version", kVersion}, {"id", kID}, {"sid", kSID}, {"traceId", kTraceID}, {"trace_id", kTraceID},
	{"to", kTo}, {"replyTo", kReplyTo}, {"reply_to", kReplyTo}, {"capabilities", kCapabilities},
	{"rtype", kRType}, {"corrId", kCorrID}, {"corr_id", kCorrID}, {"flowId", kFlowID},
	{"flow_id", kFlowID}, {"seqId", kSeqID}, {"seq_id", kSeqID}, {"flowFlags", kFlowFlags},
	{"flow_flags", kFlowFlags}, {"ttl", kTTL}, {"priority", kPriority}, {"frame", kFrame},
	{"ts", kTS}, {"sec", kSec}, {"aft", kAFT}, {"meta", kMeta},
}

// topTable is a perfect hash of topNames: one slot probe and one string compare per key,
// cheaper on the routing path than a 25-way string switch.
var topTable [64]struct {
	name string
	idx  uint8
}

func topHash(k []byte) int { return (len(k)*11 + int(k[0])*45 + int(k[len(k)-1])) & 63 }

func init() {
	for _, n := range topNames {
		e := &topTable[topHash([]byte(n.name))]
		if e.name != "" {
			panic("envelope: top-level key hash collision: " + n.name + " " + e.name)
		}
		e.name, e.idx = n.name, n.idx
	}
}

// topKey returns the index of a (unescaped) top-level key, kUnknown for keys this version does
// not know. Decode and ParseHeader both dispatch on it, so they accept the same spellings.
func topKey(k []byte) int {
	if len(k) == 0 {
		return kUnknown
	}
	if e := &topTable[topHash(k)]; e.name == string(k) {
		return int(e.idx)
	}
	return kUnknown
}

// addTop records a top-level key and fails on a repeat; the known-key test is inlined in the
// hot path, unknown keys take add.
func (s *keySet) addTop(k []byte, idx int) error {
	if idx != kUnknown {
		bit := uint32(1) << idx
		if s.known&bit == 0 {
			s.known |= bit
			return nil
		}
		return dupErr("envelope", k)
	}
	return s.add("envelope", k, 0)
}

// scope names the keys of one nested object that get bits; the first nCase of them are read by
// some decoder through encoding/json (case-insensitive), so their case variants are refused.
type scope struct {
	where string
	names []string
	nCase int
	fold  bool // refuse other keys that fold to a frame field (framefold.go)
}

// Frame keys: the ones the router reads first (type, cid, address, flowId, credits), then the
// rest of a Data frame so that the common frame needs no unknown-key bookkeeping.
var (
	frameScope   = scope{"frame", []string{"type", "cid", "address", "flowId", "credits", "payload", "codec", "pd", "fid", "nonce"}, 5, true}
	secScope     = scope{"sec", []string{"sig", "enc"}, 2, false}
	sigScope     = scope{"sec.sig", []string{"kid", "val", "alg"}, 3, false}
	encScope     = scope{"sec.enc", []string{"alg", "kid", "val"}, 3, false}
	metaScope    = scope{"meta", []string{"set", "set.aft"}, 2, false}
	metaSetScope = scope{"meta.set", []string{"aft"}, 1, false}
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
	if s.fold {
		return 0, checkFrameFold(k)
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

// unescapeKey returns the unescaped form of a raw key that has escapes (a copy; rare).
func unescapeKey(raw []byte) []byte {
	return []byte(member{key: raw, keyEscaped: true}.keyString())
}

// eachKnown walks the object at b[at] with the duplicate and case checks of sc, calling fn
// with each member and its bit (0 for keys outside the scope).
func eachKnown(b []byte, at, depth int, sc *scope, fn func(m member, bit uint32) error) (int, error) {
	var seen keySet
	return eachMember(b, at, depth, func(m member) error {
		k := m.key // not a method on m: copying m by value stalls the hot path
		if m.keyEscaped {
			k = unescapeKey(m.key)
		}
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

// parseFrameHeader reads the routing members of the frame object at b[at] (ParseHeader) and is
// the frame check of Decode and ParseFrame, so all three agree on which frames exist.
// It fills h's Frame* fields (Decode passes a scratch Header).
func parseFrameHeader(b []byte, at, depth int, h *Header) error {
	if at >= len(b) || b[at] != '{' {
		return ErrFieldType
	}
	_, err := eachKnown(b, at, depth, &frameScope, func(m member, bit uint32) error {
		v := b[m.valStart:m.valEnd]
		var err error
		switch bit {
		case fType:
			h.FrameType, err = strVal(v, m.valEscaped)
		case fCID:
			h.FrameCID, err = strVal(v, m.valEscaped)
		case fAddress:
			h.FrameAddress, err = strVal(v, m.valEscaped)
		case fFlowID:
			h.FrameFlowID, err = strVal(v, m.valEscaped)
		case fCredits:
			h.FrameCredits, err = optInt(v)
		}
		if err != nil {
			return fmt.Errorf("frame.%s: %w", m.key, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(h.FrameType) == 0 {
		return ErrMissingFrameType
	}
	return nil
}

// parseSecHeader checks the sec object at b[at] (and its sig and enc objects) and reads what
// the router needs. null is no sec.
func parseSecHeader(b []byte, at, depth int, h *Header) error {
	if isNull(b[at:min(at+4, len(b))]) {
		return nil
	}
	if b[at] != '{' {
		return fmt.Errorf("sec: %w", ErrFieldType)
	}
	_, err := eachKnown(b, at, depth, &secScope, func(m member, bit uint32) error {
		switch bit {
		case sSig:
			h.HasSig = b[m.valStart] == '{'
			if h.HasSig {
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
				if h.EncKID, err = strVal(b[k.valStart:k.valEnd], k.valEscaped); err != nil {
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
	i := jsonscan.SkipWS(raw, 0)
	if i >= len(raw) {
		return nil
	}
	if err := checkInput(raw); err != nil {
		return err
	}
	var h Header
	return parseSecHeader(raw, i, 0, &h)
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
		if bit == mSetAFT && m.keyEscaped {
			return errEscapedAFT
		}
		if bit == mSet && b[m.valStart] == '{' {
			_, err := eachKnown(b, m.valStart, depth+1, &metaSetScope, func(k member, bit uint32) error {
				if bit != 0 && k.keyEscaped {
					return errEscapedAFT
				}
				return nil
			})
			return err
		}
		return nil
	})
	return err
}

// errEscapedAFT: the sentinel finds AFTs by looking for the bytes "aft" in meta before it
// decodes it (most metas have none), so an escaped AFT key would be read by a node but never
// by the sentinel. No peer escapes it.
var errEscapedAFT = fmt.Errorf("%w: meta AFT key written with escapes", ErrAmbiguousKey)
