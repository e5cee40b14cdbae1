package aft

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// errDuplicateKey: a JOSE header or claim set names a member twice. encoding/json keeps the
// last occurrence and matches names case-insensitively, so {"client_sid":"a","CLIENT_SID":null}
// reads differently to parsers that keep the first or compare exactly; one token must have one
// meaning, so such a token is malformed.
var errDuplicateKey = errors.New("duplicate JSON member")

// checkSegments refuses a compact JWS whose header or claims segment repeats a top-level
// member (compared the way encoding/json matches names: case-insensitively).
func checkSegments(token string) error {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return nil // the JWT parser reports the structure error
	}
	for i, seg := range parts[:2] {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			return nil // likewise
		}
		if err := uniqueMembers(b); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
	}
	return nil
}

// uniqueMembers reports a repeated top-level member name of a JSON object.
func uniqueMembers(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	t, err := d.Token()
	if err != nil {
		return nil
	}
	if dl, ok := t.(json.Delim); !ok || dl != '{' {
		return nil
	}
	seen := make(map[string]struct{}, 8)
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil
		}
		k, ok := t.(string)
		if !ok {
			return nil
		}
		// ToUpper then ToLower folds the long s and the Kelvin sign as encoding/json does.
		fk := strings.ToLower(strings.ToUpper(k))
		if _, dup := seen[fk]; dup {
			return fmt.Errorf("%w %q", errDuplicateKey, k)
		}
		seen[fk] = struct{}{}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}
