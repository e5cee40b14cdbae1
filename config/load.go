package config

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// Decode parses YAML (or JSON, a subset) into out after substituting ${env:...} in every
// scalar. Unknown keys are errors, so that a typo in a config file is reported instead of
// silently ignored.
func Decode(data []byte, env Getenv, out any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if root.Kind == 0 {
		return nil // empty document: defaults
	}
	if err := substNode(&root, env); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&root); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// LoadFile reads and decodes a config file.
func LoadFile(path string, env Getenv, out any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := Decode(data, env, out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
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
