package node

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNodeTestDependencies keeps the SDK's tests free of the router and the admission
// services: the full-stack runs that need them live in e2e/. It asks the go command for
// everything `go test ./node/` builds, so a new import anywhere (test or not) is caught.
func TestNodeTestDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		// The toolchain that built this test binary.
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-test", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	has := func(p string) bool {
		for _, d := range deps {
			if d == p {
				return true
			}
		}
		return false
	}
	// The list must be the real one: the package itself and what it surely imports.
	for _, p := range []string{"github.com/fame-go/fame/node", "github.com/fame-go/fame/envelope", "github.com/fame-go/fame/security"} {
		if !has(p) {
			t.Fatalf("go list output without %s: %q", p, out)
		}
	}
	forbidden := []string{
		"github.com/fame-go/fame/sentinel",
		"github.com/fame-go/fame/admission/ca",
		"github.com/fame-go/fame/admission/welcome",
		"github.com/fame-go/fame/admission/oauth2",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("the node package's tests depend on %s (move the test to e2e/)", d)
			}
		}
	}
}
