package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// The e2e tests that run real processes build each binary once per package run into binDir
// (made and removed by TestMain), not once per test: every build is at least a link, which
// costs seconds on this project's 2-core machines.
var (
	binDir   string
	binBuilt sync.Map // import path -> func() (string, error) from sync.OnceValues
)

// goBinary returns the path of the binary of package pkg (an import path), building it on
// first use.
func goBinary(t testing.TB, pkg string) string {
	t.Helper()
	build, _ := binBuilt.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		bin := filepath.Join(binDir, path.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		return bin, nil
	}))
	bin, err := build.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// makeBinDir and removeBinDir bracket the package's tests (TestMain).
func makeBinDir() {
	d, err := os.MkdirTemp("", "fame-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binDir = d
}

func removeBinDir() { _ = os.RemoveAll(binDir) }

func TestMain(m *testing.M) {
	makeBinDir()
	code := m.Run()
	removeBinDir()
	os.Exit(leakCheck(code))
}
