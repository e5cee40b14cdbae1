// Package config loads fame-go YAML configuration files in the reference's shape (a top-level
// `node:` document) with `${env:NAME:default}` substitution, so that the same files and the
// same FAME_* variables work for fame-go and for Naylence nodes.
package config
