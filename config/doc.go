// Package config is where fame-go's settings enter: it loads YAML configuration files in the
// reference's shape (a top-level `node:` document) with `${env:NAME:default}` substitution,
// and it is, with cmd/, the only code that reads FAME_* environment variables. The library
// packages (sentinel, node, node/admit, security) take every setting as options.
//
//   - Vars is the single list of the FAME_* variables: name, who reads it, the YAML key it
//     overrides (Override), or that only the built-in default file reads it (Template), or
//     that it has no key (EnvOnly), its default and meaning. README's variable table is
//     generated from it (`make env-table`); TestEnvTable fails while the two differ, and
//     TestVarsComplete fails when code here or in cmd/fame reads a variable Vars lacks.
//   - defaults.go names every sentinel default and says why it is what it is.
//   - SentinelFromEnv reads the sentinel's Override and EnvOnly variables into SentinelEnv,
//     which sentinel.Resolve lays over the file; SentinelDefaultFile is the file used when
//     none is given.
//   - Node (NodeFrom) builds a node.Config from the variables a reference node reads, the Go
//     SDK's counterpart of a reference node configured by its environment; AdmitSettings and
//     Admit do the same for node/admit.
//   - ParseBool is the one reading of a boolean value (1/true/yes/on/enabled,
//     0/false/no/off/disabled); anything else is reported, never taken as off.
//
// Unknown keys. Decode walks the document against the target type's YAML schema, read from
// its struct tags by reflection (CheckKeys), before decoding. A key the schema lacks is
// refused when it is within two edits of a known key at the same level (a misspelling:
// `securityy:` must never leave a sentinel silently open) or when its block takes no
// extensions; otherwise (a block with an inline map, such as `node:`) it is ignored and
// returned, so that `fame validate` lists it and `fame sentinel` logs it at start-up.
// DecodeAll (used by sentinel.Load, so by `fame validate`, the start and every hot reload)
// returns the fatal ones too but goes on decoding without them, so that one pass reports every
// problem of a file: misspelt keys, mistyped values and, through sentinel.Resolve, invalid
// settings.
//
// Hot reload. The environment is read once per load, as at start: `fame sentinel` re-reads its
// file on SIGHUP or when it changes with the process environment, which nothing outside the
// process can change, so a FAME_* variable that wins over a key still wins after a reload.
package config
