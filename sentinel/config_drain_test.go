package sentinel

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/config"
)

// TestDrainTimeoutSetting: drain_timeout defaults to 30 s, the file's node.drain_timeout sets
// it, FAME_DRAIN_TIMEOUT wins over the file, and a value that is not a positive duration is
// a problem named by its key or variable.
func TestDrainTimeoutSetting(t *testing.T) {
	load := func(body string, env map[string]string) (Options, error) {
		t.Helper()
		path := ""
		if body != "" {
			path = t.TempDir() + "/s.yml"
			if err := os.WriteFile(path, []byte("node:\n  type: Sentinel\n"+body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return LoadOptions(path, config.MapEnv(env))
	}
	if o, err := load("", nil); err != nil || o.DrainTimeout != 30*time.Second {
		t.Fatalf("default: %v, %v; want 30s", o.DrainTimeout, err)
	}
	if o, err := load("  drain_timeout: 5s\n", nil); err != nil || o.DrainTimeout != 5*time.Second {
		t.Fatalf("file: %v, %v; want 5s", o.DrainTimeout, err)
	}
	if o, err := load("  drain_timeout: 5s\n", map[string]string{"FAME_DRAIN_TIMEOUT": "2m"}); err != nil || o.DrainTimeout != 2*time.Minute {
		t.Fatalf("variable over file: %v, %v; want 2m", o.DrainTimeout, err)
	}
	for _, c := range []struct {
		body string
		env  map[string]string
		name string
	}{
		{"  drain_timeout: soon\n", nil, "drain_timeout"},
		{"  drain_timeout: -1s\n", nil, "drain_timeout"},
		{"", map[string]string{"FAME_DRAIN_TIMEOUT": "30"}, "FAME_DRAIN_TIMEOUT"},
		{"", map[string]string{"FAME_DRAIN_TIMEOUT": "0s"}, "FAME_DRAIN_TIMEOUT"},
	} {
		_, err := load(c.body, c.env)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%q %v: err %v, want a config problem naming %s", c.body, c.env, err, c.name)
		}
	}
}
