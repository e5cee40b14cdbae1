package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestAgentLinksNoSentinelLibraries: an agent binary links the node SDK only. The sentinel's
// binding table (package stickiness, with bbolt for persistence) and the router must not reach it through the SDK: the node takes AFT minting from the
// leaf package security/aft. A new import that drags one of them back in fails here.
//
// golang-lru is not on the list: the node itself uses it (received-id dedupe, per-flow credit
// counters, the replay guard of package security), and it is one of the project's chosen
// dependencies, small and with no dependencies of its own; a copy of it in our tree would be
// code to keep for no gain.
func TestAgentLinksNoSentinelLibraries(t *testing.T) {
	deps := goListDeps(t, ".")
	for _, banned := range []string{"go.etcd.io/bbolt", "github.com/fame-go/fame/stickiness",
		"github.com/fame-go/fame/sentinel", "github.com/fame-go/fame/balancer"} {
		for _, d := range deps {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("math-agent links %s (via %s)", banned, d)
			}
		}
	}
}

// goListDeps returns the import paths `go list -deps` reports for pkg. The go command is
// required: CI always has it, and a missing one must not turn this check into a pass.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", pkg).Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps %s listed only %v", pkg, deps)
	}
	return deps
}
