package admit

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenLifetime reads iat/exp from a JWT without verifying it: the client
// only needs to know when to renew; the services verify. ok is false when
// the token is not a JWT or has no exp. life is exp-iat when iat is present
// (immune to clock skew between us and the issuer), else zero.
func tokenLifetime(tok string) (exp time.Time, life time.Duration, ok bool) {
	if tok == "" || len(tok) > maxTokenLen {
		return time.Time{}, 0, false
	}
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil || c.ExpiresAt == nil {
		return time.Time{}, 0, false
	}
	exp = c.ExpiresAt.Time
	if c.IssuedAt != nil && exp.After(c.IssuedAt.Time) {
		life = exp.Sub(c.IssuedAt.Time)
	}
	return exp, life, true
}

// maxTokenLen bounds what is handed to the JWT parser (real tokens are well
// under 2 KiB).
const maxTokenLen = 16 << 10

// localExpiry turns a token's exp into a local-clock expiry. With iat it is
// start+life, or exp itself when that is earlier but still after start (the
// clocks agree and exp, truncated to seconds, is the real bound); without
// iat it is exp.
func localExpiry(tok string, start time.Time) (time.Time, bool) {
	exp, life, ok := tokenLifetime(tok)
	if !ok {
		return time.Time{}, false
	}
	if life <= 0 {
		return exp, true
	}
	if rel := start.Add(life); !exp.After(start) || rel.Before(exp) {
		return rel, true
	}
	return exp, true
}

func checkTokenChars(what, tok string) error {
	// A token goes into an HTTP header or a WebSocket subprotocol; both
	// forbid controls, spaces and commas.
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c <= ' ' || c >= 0x7f || c == ',' || c == '"' {
			return fmt.Errorf("%w: %s contains byte %#x not allowed in a header", ErrBadResponse, what, c)
		}
	}
	return nil
}
