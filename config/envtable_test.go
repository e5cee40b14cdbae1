package config

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var updateEnvTable = flag.Bool("update-env-table", false, "rewrite README.md's FAME_* table from Vars")

const readme = "../README.md"

// TestEnvTable: README's variable table is the one Vars generates. `make env-table` (or go
// generate ./config) rewrites it.
func TestEnvTable(t *testing.T) {
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ReplaceEnvTable(string(doc), EnvTable())
	if !ok {
		t.Fatalf("README.md has no %q ... %q section", EnvTableBegin, EnvTableEnd)
	}
	if got == string(doc) {
		return
	}
	if *updateEnvTable {
		if err := os.WriteFile(readme, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README.md's FAME_* table differs from config.Vars; run `make env-table`")
}

// A read is a string literal that is exactly a variable name (e.str("FAME_X"),
// os.Getenv("FAME_X")) or a ${env:FAME_X...} reference of a config template; a name inside a
// message or a flag's help text is a mention, not a read.
var (
	fameName  = regexp.MustCompile(`^(FAME|OTEL)_[A-Z0-9_]*[A-Z0-9]$`)
	fameSubst = regexp.MustCompile(`\$\{env:(FAME_[A-Z0-9_]*[A-Z0-9])[:}]`)
)

// TestVarsComplete: every FAME_* variable read in this package and in cmd/fame is in Vars,
// and every entry of Vars is read there, so the table can neither miss a variable nor list
// a dead one.
func TestVarsComplete(t *testing.T) {
	seen := map[string]string{}
	for _, dir := range []string{".", "../cmd/fame"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "vars.go") || strings.HasSuffix(f, "envtable.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(af, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatalf("%s: %v", f, err)
					}
					if fameName.MatchString(s) {
						seen[s] = f
					}
					for _, m := range fameSubst.FindAllStringSubmatch(s, -1) {
						seen[m[1]] = f
					}
				}
				return true
			})
		}
	}
	var listed []string
	for _, v := range Vars {
		if slices.Contains(listed, v.Name) {
			t.Errorf("%s listed twice", v.Name)
		}
		listed = append(listed, v.Name)
		if _, ok := seen[v.Name]; !ok {
			t.Errorf("%s is listed in Vars but not read in config/ or cmd/fame", v.Name)
		}
		if (v.Mode == EnvOnly) != (v.Key == "") {
			t.Errorf("%s: mode %d with key %q", v.Name, v.Mode, v.Key)
		}
	}
	for name, f := range seen {
		if !slices.Contains(listed, name) {
			t.Errorf("%s (read in %s) is missing from Vars", name, f)
		}
	}
}

func TestReplaceEnvTable(t *testing.T) {
	doc := "a\n" + EnvTableBegin + "\nold\n" + EnvTableEnd + "\nb\n"
	got, ok := ReplaceEnvTable(doc, "new\n")
	if !ok || got != "a\n"+EnvTableBegin+"\nnew\n"+EnvTableEnd+"\nb\n" {
		t.Fatalf("%v %q", ok, got)
	}
	if _, ok := ReplaceEnvTable("no markers", "x"); ok {
		t.Fatal("missing markers accepted")
	}
	if _, ok := ReplaceEnvTable(EnvTableEnd+EnvTableBegin, "x"); ok {
		t.Fatal("markers out of order accepted")
	}
}
