package main

import (
	"os/exec"
	"strings"
	"testing"

	"errors"
)

// TestAgentLinksNoSentinelLibraries: an agent binary links the node SDK only. The sentinel's
// binding table (package stickiness: bbolt for persistence, golang-lru for the LRUs) must not
// reach it through the SDK — the node takes AFT minting from the leaf package security/aft
// and its LRUs from internal/lru. A new import that drags either back in fails here.
func TestAgentLinksNoSentinelLibraries(t *testing.T) {
	deps := goListDeps(t, ".")
	for _, banned := range []string{"go.etcd.io/bbolt", "github.com/hashicorp/golang-lru", "github.com/fame-go/fame/stickiness"} {
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
