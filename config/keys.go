package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrUnknownKey marks a document with a key the schema does not know where that cannot be
// ignored: a key within two edits of a known one (a misspelling: `securityy:` must not leave
// the security block at its open default), or any unknown key in a block that has no room for
// extensions.
var ErrUnknownKey = errors.New("config: unknown key")

// UnknownKey is one key of a document that the target type does not declare.
type UnknownKey struct {
	Path string // dotted path of the key, e.g. node.securityy
	Line int    // 1-based line in the document
	// Near is the known key at the same level within two edits, if any: the key is then
	// taken for a misspelling of it and refused.
	Near string
	// Strict is set when the enclosing block accepts no extensions (the decoder would refuse
	// the key anyway); such keys are refused too.
	Strict bool
}

// Fatal reports whether the key makes the document invalid.
func (u UnknownKey) Fatal() bool { return u.Near != "" || u.Strict }

func (u UnknownKey) String() string {
	switch {
	case u.Near != "":
		return fmt.Sprintf("line %d: unknown key %s (did you mean %q?)", u.Line, u.Path, u.Near)
	case u.Strict:
		return fmt.Sprintf("line %d: unknown key %s", u.Line, u.Path)
	default:
		return fmt.Sprintf("line %d: unknown key %s (ignored)", u.Line, u.Path)
	}
}

// UnknownKeysError lists the fatal unknown keys of a document.
type UnknownKeysError struct{ Keys []UnknownKey }

func (e *UnknownKeysError) Error() string {
	s := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		s[i] = k.String()
	}
	return "config: " + strings.Join(s, "; ")
}

func (e *UnknownKeysError) Is(target error) bool { return target == ErrUnknownKey }

// maxTypoDistance is how many single-character edits (insert, delete, substitute) separate a
// misspelling from the key it was meant to be. Two catches a doubled, dropped or swapped
// letter (a swap is two edits); more would take real extension keys for typos.
const maxTypoDistance = 2

// CheckKeys walks root (a decoded YAML document) against the YAML schema of t, the type the
// document decodes into, and returns every key t does not declare, in document order. The
// schema is read from the struct tags, so it cannot drift from the decoder. Keys a struct
// takes in an inline map (its extension point) are listed but not fatal unless they are
// within maxTypoDistance of a declared key at the same level; in a struct without an inline
// map every unknown key is fatal, as it is for the decoder.
func CheckKeys(root *yaml.Node, t reflect.Type) []UnknownKey {
	var out []UnknownKey
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	walkKeys(n, t, "", &out)
	return out
}

// schema is the YAML view of one struct type.
type schema struct {
	fields map[string]reflect.Type // YAML key -> field type
	keys   []string                // sorted, for stable suggestions
	open   bool                    // has an inline map: unknown keys are extensions
}

func schemaOf(t reflect.Type) schema {
	s := schema{fields: map[string]reflect.Type{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if slices.Contains(strings.Split(opts, ","), "inline") {
				ft := deref(f.Type)
				switch ft.Kind() {
				case reflect.Map:
					s.open = true
				case reflect.Struct:
					add(ft)
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name) // the decoder's default key
			}
			s.fields[name] = f.Type
		}
	}
	add(t)
	for k := range s.fields {
		s.keys = append(s.keys, k)
	}
	slices.Sort(s.keys)
	return s
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func walkKeys(n *yaml.Node, t reflect.Type, path string, out *[]UnknownKey) {
	if n == nil {
		return
	}
	t = deref(t)
	if n.Kind == yaml.AliasNode {
		n = n.Alias
		if n == nil {
			return
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error, the decoder's to report
		}
		s := schemaOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			p := joinPath(path, k.Value)
			if k.Value == "<<" { // a merge key: its mapping's keys belong to this level
				walkKeys(v, t, path, out)
				continue
			}
			ft, ok := s.fields[k.Value]
			if !ok {
				*out = append(*out, UnknownKey{Path: p, Line: k.Line, Near: nearest(k.Value, s.keys), Strict: !s.open})
				continue
			}
			walkKeys(v, ft, p, out)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			walkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkKeys(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), out)
		}
	}
	// Scalars and interfaces (free-form blocks such as telemetry) have no keys to check.
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// nearest returns the known key within maxTypoDistance of key, the closest one first
// (ties: alphabetical), or "". A known key must be at least four bytes long and longer than
// the distance: a short key like id is not the "near miss" of every other short word (ip,
// ids), which would make unrelated keys fatal.
func nearest(key string, known []string) string {
	best, bestD := "", maxTypoDistance+1
	for _, k := range known {
		d := levenshtein(strings.ToLower(key), k)
		if d < bestD && d < len(k) && len(k) >= 4 {
			best, bestD = k, d
		}
	}
	return best
}

// levenshtein is the edit distance between a and b (bytes; keys are ASCII).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
