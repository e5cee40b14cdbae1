package security

import "github.com/fame-go/fame/internal/jsonscan"

// secView is what the verify path needs from a sec header: the signature's kid and val,
// sliced out of the raw header when possible so that verifying allocates nothing for it.
type secView struct {
	hasSig   bool
	kid, val []byte
	// The rest is for ParseSec's fast path: sig.alg, and sec.enc's alg, kid and val.
	alg    []byte
	hasEnc bool
	enc    [3][]byte
}

// viewSec reads the sec header with the same result as ParseSec (same errors, same kid and
// val). The common shape, {"sig":{...},"enc":{...}} with plain ASCII strings, is sliced in
// place; anything else (escapes, unknown or duplicate members, nulls, mixed-case names that
// encoding/json would match) goes through ParseSec.
func viewSec(raw []byte) (secView, error) {
	if v, ok := fastSecView(raw); ok {
		return v, nil
	}
	s, err := ParseSec(raw)
	if err != nil || s == nil || s.Sig == nil {
		return secView{}, err
	}
	return secView{hasSig: true, kid: []byte(s.Sig.Kid), val: []byte(s.Sig.Val)}, nil
}

// fastSecView succeeds only on input for which ParseSec would succeed with the same values.
func fastSecView(raw []byte) (secView, bool) {
	var v secView
	pos := jsonscan.SkipWS(raw, 0)
	if pos >= len(raw) || raw[pos] != '{' {
		return v, false
	}
	var seenSig, seenEnc bool
	pos = jsonscan.SkipWS(raw, pos+1)
	if pos < len(raw) && raw[pos] == '}' {
		return v, jsonscan.SkipWS(raw, pos+1) == len(raw) // {}: no sig, no enc
	}
	for {
		name, next, ok := plainString(raw, pos)
		if !ok {
			return v, false
		}
		pos = jsonscan.SkipWS(raw, next)
		if pos >= len(raw) || raw[pos] != ':' {
			return v, false
		}
		pos = jsonscan.SkipWS(raw, pos+1)
		var f [3][]byte // sig: kid val alg; enc: alg kid val
		switch {
		case string(name) == "sig" && !seenSig:
			seenSig, v.hasSig = true, true
			if pos, ok = plainStringObject(raw, pos, [3]string{"kid", "val", "alg"}, &f); !ok || len(f[0]) == 0 || len(f[1]) == 0 {
				return v, false
			}
			v.kid, v.val, v.alg = f[0], f[1], f[2]
		case string(name) == "enc" && !seenEnc:
			seenEnc = true
			if pos, ok = plainStringObject(raw, pos, [3]string{"alg", "kid", "val"}, &f); !ok || len(f[1]) == 0 {
				return v, false
			}
			v.hasEnc, v.enc = true, f
		default:
			return v, false
		}
		pos = jsonscan.SkipWS(raw, pos)
		if pos >= len(raw) {
			return v, false
		}
		if raw[pos] == '}' {
			return v, jsonscan.SkipWS(raw, pos+1) == len(raw)
		}
		if raw[pos] != ',' {
			return v, false
		}
		pos = jsonscan.SkipWS(raw, pos+1)
	}
}

// plainStringObject reads an object whose members are among names, each at most once, with
// plain string values; present values are stored in f by the index of their name.
func plainStringObject(raw []byte, pos int, names [3]string, f *[3][]byte) (int, bool) {
	if pos >= len(raw) || raw[pos] != '{' {
		return pos, false
	}
	pos = jsonscan.SkipWS(raw, pos+1)
	if pos < len(raw) && raw[pos] == '}' {
		return pos + 1, true
	}
	var seen [3]bool
	for {
		name, next, ok := plainString(raw, pos)
		if !ok {
			return pos, false
		}
		idx := -1
		for i, n := range names {
			if string(name) == n {
				idx = i
			}
		}
		if idx < 0 || seen[idx] {
			return pos, false
		}
		seen[idx] = true
		pos = jsonscan.SkipWS(raw, next)
		if pos >= len(raw) || raw[pos] != ':' {
			return pos, false
		}
		if f[idx], pos, ok = plainString(raw, jsonscan.SkipWS(raw, pos+1)); !ok {
			return pos, false
		}
		pos = jsonscan.SkipWS(raw, pos)
		if pos >= len(raw) {
			return pos, false
		}
		if raw[pos] == '}' {
			return pos + 1, true
		}
		if raw[pos] != ',' {
			return pos, false
		}
		pos = jsonscan.SkipWS(raw, pos+1)
	}
}

// plainString reads a JSON string made only of printable ASCII without escapes, so its
// decoded value is its raw text.
func plainString(raw []byte, pos int) (s []byte, next int, ok bool) {
	if pos >= len(raw) || raw[pos] != '"' {
		return nil, pos, false
	}
	for i := pos + 1; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			return raw[pos+1 : i], i + 1, true
		case c < 0x20 || c == '\\' || c >= 0x7f:
			return nil, pos, false
		}
	}
	return nil, pos, false
}
