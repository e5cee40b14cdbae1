// Package envx parses the FAME_* environment values of the admission
// services: durations in seconds or Go syntax, comma lists, booleans.
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

// Bool is true for 1/true/yes/on (any case).
func Bool(getenv func(string) string, name string) bool {
	switch strings.ToLower(strings.TrimSpace(getenv(name))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
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
