package aft

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestLeafDependencies: outside the standard library this package may import only golang-jwt,
// so that the node SDK can mint AFTs without linking the sentinel's binding table (bbolt,
// golang-lru, Prometheus).
func TestLeafDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	self := false
	for _, d := range deps {
		switch {
		case d == "github.com/fame-go/fame/security/aft":
			self = true
		case d == "github.com/golang-jwt/jwt/v5" || strings.HasPrefix(d, "github.com/golang-jwt/jwt/v5/"):
		default:
			t.Errorf("security/aft depends on %s", d)
		}
	}
	if !self {
		t.Fatalf("go list output does not name the package itself: %q", out)
	}
}
