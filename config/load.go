package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode parses YAML (or JSON, a subset) into out after substituting ${env:...} in every
// scalar. Keys out does not declare are errors, except in a block with an extension point
// (an inline map, such as the sentinel's `node:`), where they are ignored unless they look
// like a misspelt known key; DecodeReport also returns the ignored ones.
func Decode(data []byte, env Getenv, out any) error {
	_, err := DecodeReport(data, env, out)
	return err
}

// DecodeReport is Decode that also returns the unknown keys it ignored (for `fame validate`
// and the start-up log). A fatal unknown key makes it fail with an *UnknownKeysError listing
// every fatal one with its line, before anything is decoded.
func DecodeReport(data []byte, env Getenv, out any) ([]UnknownKey, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if root.Kind == 0 {
		return nil, nil // empty document: defaults
	}
	var ignored, fatal []UnknownKey
	if t := reflect.TypeOf(out); t != nil && t.Kind() == reflect.Pointer {
		for _, k := range CheckKeys(&root, t.Elem()) {
			if k.Fatal() {
				fatal = append(fatal, k)
			} else {
				ignored = append(ignored, k)
			}
		}
	}
	if len(fatal) > 0 {
		return ignored, &UnknownKeysError{Keys: fatal}
	}
	if err := substNode(&root, env); err != nil {
		return ignored, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&root); err != nil {
		return ignored, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(&buf)
	// CheckKeys found every key the decoder would refuse; the decoder stays strict anyway,
	// as a second line should the two ever disagree.
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return ignored, fmt.Errorf("config: %w", err)
	}
	return ignored, nil
}

// DecodeAll is DecodeReport for a caller that lists every problem of a document at once
// (`fame validate`, a hot reload): fatal unknown keys are returned in unknown (nil when there
// are none) and removed from the document, and the rest is decoded all the same, so that an
// invalid value elsewhere is reported in the same pass. err is a parse error, a substitution
// error or the decoder's (a *yaml.TypeError lists every mistyped value); out holds whatever
// decoded. The caller must not use out when unknown or err is set.
func DecodeAll(data []byte, env Getenv, out any) (ignored []UnknownKey, unknown *UnknownKeysError, err error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if root.Kind == 0 {
		return nil, nil, nil
	}
	var fatal []UnknownKey
	if t := reflect.TypeOf(out); t != nil && t.Kind() == reflect.Pointer {
		for _, k := range CheckKeys(&root, t.Elem()) {
			if k.Fatal() {
				fatal = append(fatal, k)
			} else {
				ignored = append(ignored, k)
			}
		}
	}
	if len(fatal) > 0 {
		unknown = &UnknownKeysError{Keys: fatal}
		dropKeys(&root, fatal)
	}
	if err := substNode(&root, env); err != nil {
		return ignored, unknown, err
	}
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(&root); err != nil {
		return ignored, unknown, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return ignored, unknown, fmt.Errorf("config: %w", err)
	}
	return ignored, unknown, nil
}

// dropKeys removes the mapping entries of keys (by line, which CheckKeys took from the key
// node) from the document, so that the strict decoder can go on to the rest of it.
func dropKeys(n *yaml.Node, keys []UnknownKey) {
	lines := make(map[int]bool, len(keys))
	for _, k := range keys {
		lines[k.Line] = true
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.MappingNode {
			kept := n.Content[:0:0]
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Kind == yaml.ScalarNode && lines[k.Line] && isUnknown(k, keys) {
					continue
				}
				kept = append(kept, k, v)
			}
			n.Content = kept
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
}

func isUnknown(k *yaml.Node, keys []UnknownKey) bool {
	for _, u := range keys {
		if u.Line == k.Line && (u.Path == k.Value || strings.HasSuffix(u.Path, "."+k.Value)) {
			return true
		}
	}
	return false
}

// ReadAll reads path and decodes it with DecodeAll; errors name the file.
func ReadAll(path string, env Getenv, out any) (ignored []UnknownKey, unknown *UnknownKeysError, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return DecodeAll(data, env, out)
}

// LoadFile reads and decodes a config file.
func LoadFile(path string, env Getenv, out any) error {
	_, err := LoadFileReport(path, env, out)
	return err
}

// LoadFileReport is LoadFile returning the ignored unknown keys, as DecodeReport.
func LoadFileReport(path string, env Getenv, out any) ([]UnknownKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	ignored, err := DecodeReport(data, env, out)
	if err != nil {
		return ignored, fmt.Errorf("%s: %w", path, err)
	}
	return ignored, nil
}

func substNode(n *yaml.Node, env Getenv) error {
	if n.Kind == yaml.ScalarNode {
		v, err := Substitute(n.Value, env)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		if v != n.Value {
			n.Value = v
			// Let the decoder re-resolve the type so that port: "${env:P:8000}" fills an int,
			// and an empty substitution leaves the field at its zero value.
			n.Tag = ""
			n.Style = 0
			if v == "" {
				n.Tag = "!!null"
			}
		}
		return nil
	}
	for _, c := range n.Content {
		if err := substNode(c, env); err != nil {
			return err
		}
	}
	return nil
}
