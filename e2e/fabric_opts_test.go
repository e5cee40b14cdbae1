package e2e

import (
	"testing"

	"github.com/fame-go/fame/internal/syncbuf"
	"github.com/fame-go/fame/sentinel"
)

// newFabricWith is newFabric with the loaded options adjusted by mod before the sentinel
// starts (and again on every restart), for settings no FAME_* variable reaches.
func newFabricWith(t *testing.T, env map[string]string, mod func(*sentinel.Options)) *fabric {
	t.Helper()
	f := &fabric{t: t, env: env, logs: &syncbuf.Buffer{}, opts: mod}
	f.start("127.0.0.1:0")
	t.Cleanup(func() { f.stop() })
	return f
}
