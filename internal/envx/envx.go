package envx

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration parses "300" (seconds, as the reference's *_ttl_sec settings) or
// "5m". Empty gives def.
func Duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0, fmt.Errorf("%s: must be positive, got %q", name, v)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: not a positive duration: %q", name, v)
	}
	return d, nil
}

// List splits a comma- or space-separated value; empty gives def.
func List(getenv func(string) string, name string, def []string) []string {
	f := strings.FieldsFunc(getenv(name), func(r rune) bool { return r == ',' || r == ' ' })
	if len(f) == 0 {
		return def
	}
	return f
}

// ParseBool reads a boolean setting: 1, true, yes, on, enabled and 0, false, no, off,
// disabled, in any case, surrounding space ignored. ok is false for anything else, the empty
// string included: strict callers report it as a problem, lenient ones (Bool) take it as
// false. It is the one spelling of a boolean for every FAME_* variable and YAML value.
func ParseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on", "enabled":
		return true, true
	case "0", "false", "no", "off", "disabled":
		return false, true
	}
	return false, false
}

// Bool is the variable name read with ParseBool, anything unrecognised (or unset) being false:
// for opt-in switches, where only a clear yes turns the feature on.
func Bool(getenv func(string) string, name string) bool {
	v, _ := ParseBool(getenv(name))
	return v
}

// First returns the first non-empty value among names, else def.
func First(getenv func(string) string, def string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return def
}
