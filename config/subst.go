package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrMissingEnv is returned for ${env:NAME} (no default) when NAME is not set.
var ErrMissingEnv = errors.New("config: required environment variable not set")

// Getenv looks up environment variables; tests pass a map-backed one.
type Getenv func(string) (string, bool)

// OSEnv reads the process environment.
func OSEnv(k string) (string, bool) { return os.LookupEnv(k) }

// Substitute expands every ${env:NAME} and ${env:NAME:default} in s. The default may be empty
// and may itself contain colons; an unset NAME without a default is an error, as in the
// reference. Text that is not a ${env:...} reference is kept as is.
func Substitute(s string, env Getenv) (string, error) {
	if !strings.Contains(s, "${env:") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${env:")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		rest := s[i+len("${env:"):]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return "", fmt.Errorf("config: unterminated ${env: in %q", s)
		}
		ref := rest[:j]
		name, def, hasDef := strings.Cut(ref, ":")
		if name == "" {
			return "", fmt.Errorf("config: empty variable name in %q", s)
		}
		if v, ok := env(name); ok {
			b.WriteString(v)
		} else if hasDef {
			b.WriteString(def)
		} else {
			return "", fmt.Errorf("%w: %s", ErrMissingEnv, name)
		}
		s = rest[j+1:]
	}
}
