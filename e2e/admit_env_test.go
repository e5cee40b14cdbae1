package e2e

import (
	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/node/admit"
)

// admitEnv reads a node's admission settings from a map of FAME_* variables, as config.Node
// does from the environment.
func admitEnv(env map[string]string) *admit.Settings {
	s := config.AdmitSettings(config.MapEnv(env))
	return &s
}
