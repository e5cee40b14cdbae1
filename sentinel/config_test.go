package sentinel

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/security"
)

func TestListenerPortFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want int
	}{
		{nil, 8000},
		{map[string]string{"FAME_LISTENER_PORT": "0"}, 0}, // any free port
		{map[string]string{"FAME_LISTENER_PORT": "9123"}, 9123},
	}
	for _, c := range cases {
		get := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
		o, err := LoadOptions("", config.Getenv(get))
		if err != nil || o.Port != c.want {
			t.Errorf("env %v: port %d, %v; want %d", c.env, o.Port, err, c.want)
		}
	}
	get := func(k string) (string, bool) {
		if k == "FAME_LISTENER_PORT" {
			return "70000", true
		}
		return "", false
	}
	if _, err := LoadOptions("", config.Getenv(get)); !errors.Is(err, ErrConfig) {
		t.Errorf("port 70000 accepted: %v", err)
	}
}

// TestMisspeltBlockRefused: a misspelt security (or admission) block must never leave the
// sentinel at the open default; a key far from any known one is an extension, listed.
func TestMisspeltBlockRefused(t *testing.T) {
	none := config.Getenv(func(string) (string, bool) { return "", false })
	cases := []struct {
		name, body string
		fatal      bool
		ignored    []string
	}{
		{"securityy", "  securityy: {type: SecurityProfile, profile: strict-overlay}\n", true, nil},
		{"admision", "  admision: {type: AdmissionProfile, profile: direct}\n", true, nil},
		{"Security", "  Security: {profile: overlay}\n", true, nil},
		{"limits typo", "  limits: {max_route: 3}\n", true, nil},
		{"extension", "  traffic_store: {type: X}\n", false, []string{"node.traffic_store"}},
		{"clean", "  security: {type: SecurityProfile, profile: overlay}\n", false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := t.TempDir() + "/s.yml"
			if err := os.WriteFile(path, []byte("node:\n  type: Sentinel\n"+c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			o, ignored, err := Load(path, none)
			if c.fatal {
				if !errors.Is(err, config.ErrUnknownKey) {
					t.Fatalf("accepted (security %s): %v", o.SecurityProfile, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range ignored {
				got = append(got, k.Path)
			}
			if !slices.Equal(got, c.ignored) {
				t.Fatalf("ignored %v, want %v", got, c.ignored)
			}
		})
	}
	if _, ignored, err := Load("", none); err != nil || len(ignored) != 0 {
		t.Fatalf("built-in defaults: %v %v", ignored, err)
	}
}

// TestProfilesValidated: each profile is one of its constants.
func TestProfilesValidated(t *testing.T) {
	for _, kv := range [][2]string{{"FAME_SECURITY_PROFILE", "strictoverlay"}, {"FAME_ADMISSION_PROFILE", "welcom"},
		{"FAME_DELIVERY_PROFILE", "exactly-once"}, {"FAME_LOAD_BALANCING", "rr"}, {"FAME_STICKINESS_LEVEL", "none"},
		{"FAME_STORAGE_PROFILE", "redis"}, {"FAME_STICKINESS", "maybe"}, {"FAME_SHOW_ENVELOPES", "yes please"}} {
		get := func(k string) (string, bool) {
			if k == kv[0] {
				return kv[1], true
			}
			return "", false
		}
		_, err := LoadOptions("", get)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), kv[1]) {
			t.Errorf("%s=%s: %v", kv[0], kv[1], err)
		}
	}
	o, err := LoadOptions("", func(k string) (string, bool) {
		v, ok := map[string]string{"FAME_SECURITY_PROFILE": "overlay", "FAME_ADMISSION_PROFILE": "direct",
			"FAME_LOAD_BALANCING": "random", "FAME_STICKINESS": "off", "FAME_SHOW_ENVELOPES": "1"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.SecurityProfile != security.ProfileOverlay || o.AdmissionProfile != AdmissionDirect ||
		o.LoadBalancing != LoadBalancingRandom || o.Stickiness || !o.ShowEnvelopes {
		t.Fatalf("%+v", o.ProfileOptions)
	}
}
