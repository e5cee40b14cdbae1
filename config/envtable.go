package config

import (
	"fmt"
	"strings"
)

//go:generate go test -run ^TestEnvTable$ -update-env-table

// Markers of README's generated variable table.
const (
	EnvTableBegin = "<!-- BEGIN FAME_ENV_TABLE: generated from config/vars.go by `make env-table`; do not edit -->"
	EnvTableEnd   = "<!-- END FAME_ENV_TABLE -->"
)

// EnvTable renders Vars as README's Markdown table (between the markers, exclusive).
func EnvTable() string {
	var b strings.Builder
	b.WriteString("Every `FAME_*` variable fame-go reads, and the `OTEL_*` ones of tracing. *Applies to*: the sentinel, the Go SDK (`config.Node`),\n")
	b.WriteString("or a `fame` subcommand's flag default (cli). *YAML key*: **wins** means the variable overrides the\n")
	b.WriteString("sentinel file's key; **template** means only the built-in default file reads it\n")
	b.WriteString("(`${env:NAME:default}`; a file of your own must reference it the same way); *env only* has no key.\n")
	b.WriteString("The admission services (`fame oauth2`, `fame welcome`, `fame ca`) read theirs, documented in\n")
	b.WriteString("their packages (`admission/oauth2`, `admission/welcome`, `admission/ca`).\n\n")
	b.WriteString("| Variable | Applies to | YAML key | Default | Meaning |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, v := range Vars {
		key := "env only"
		switch v.Mode {
		case Override:
			key = fmt.Sprintf("`%s` (wins)", v.Key)
		case Template:
			key = fmt.Sprintf("`%s` (template)", v.Key)
		}
		def := v.Default
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", v.Name, v.Applies, key, def, v.Meaning)
	}
	return b.String()
}

// ReplaceEnvTable returns doc with the text between the markers replaced by table; ok is
// false when the markers are missing or out of order.
func ReplaceEnvTable(doc, table string) (string, bool) {
	i := strings.Index(doc, EnvTableBegin)
	j := strings.Index(doc, EnvTableEnd)
	if i < 0 || j < i {
		return doc, false
	}
	return doc[:i+len(EnvTableBegin)] + "\n" + table + doc[j:], true
}
