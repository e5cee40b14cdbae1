package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"

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
