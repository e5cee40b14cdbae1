package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/node"
)

func TestNodeFromEnv(t *testing.T) {
	env := map[string]string{
		"FAME_DIRECT_ADMISSION_URL":    "ws://127.0.0.1:8000/fame/v1/attach/ws/downstream",
		"FAME_NODE_ID":                 "fixedNodeId00001",
		"FAME_NODE_ID_SALT":            "s1",
		"FAME_DELIVERY_PROFILE":        "at-least-once",
		"FAME_DELIVERY_MAX_RETRIES":    "3",
		"FAME_DELIVERY_BASE_DELAY_MS":  "250",
		"FAME_DELIVERY_BACKOFF_FACTOR": "1.5",
		"FAME_FLOW_CONTROL":            "0",
		"FAME_SHOW_ENVELOPES":          "true",
		"FAME_REQUESTED_LOGICALS":      "*.fame.fabric, fame.fabric",
	}
	c, err := NodeFrom(MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.SystemID != "fixedNodeId00001" || c.IDSalt != "s1" || c.Delivery != node.AtLeastOnce || !c.DisableFlowControl || !c.ShowEnvelopes {
		t.Errorf("config = %+v", c)
	}
	if c.SenderRetry.MaxRetries != 3 || c.SenderRetry.BaseDelay != 250*time.Millisecond || c.SenderRetry.Factor != 1.5 || c.SenderRetry.MaxDelay != node.DefaultSenderRetry.MaxDelay {
		t.Errorf("sender retry = %+v", c.SenderRetry)
	}
	if len(c.RequestedLogicals) != 2 || c.RequestedLogicals[0] != "*.fame.fabric" || c.RequestedLogicals[1] != "fame.fabric" {
		t.Errorf("logicals = %q", c.RequestedLogicals)
	}
	if c.AdmissionSettings == nil || c.AdmissionSettings.URL != env["FAME_DIRECT_ADMISSION_URL"] || c.AdmissionSettings.NodeID != "fixedNodeId00001" {
		t.Errorf("admission settings = %+v", c.AdmissionSettings)
	}
	// FAME_FLOW_CONTROL takes every boolean spelling; only off-like values disable.
	for v, off := range map[string]bool{"off": true, "false": true, "1": false, "on": false} {
		env["FAME_FLOW_CONTROL"] = v
		if c, err := NodeFrom(MapEnv(env)); err != nil || c.DisableFlowControl != off {
			t.Errorf("FAME_FLOW_CONTROL=%s: disabled %v, %v", v, c.DisableFlowControl, err)
		}
	}
}

func TestNodeFromEnvErrors(t *testing.T) {
	tests := []struct{ name, key, val string }{
		{"no url", "FAME_DIRECT_ADMISSION_URL", ""},
		{"http url", "FAME_DIRECT_ADMISSION_URL", "http://x"},
		{"http url in a list", "FAME_DIRECT_ADMISSION_URL", "ws://a/x,http://b/x"},
		{"bad delivery", "FAME_DELIVERY_PROFILE", "exactly-once"},
		{"bad retries", "FAME_DELIVERY_MAX_RETRIES", "-1"},
		{"bad factor", "FAME_DELIVERY_BACKOFF_FACTOR", "fast"},
		{"unknown security profile", "FAME_SECURITY_PROFILE", "overlay-ish"},
		{"unknown encryption level", "FAME_DEFAULT_ENCRYPTION_LEVEL", "tls"},
		{"bad flow control", "FAME_FLOW_CONTROL", "sometimes"},
		{"bad show envelopes", "FAME_SHOW_ENVELOPES", "loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"FAME_DIRECT_ADMISSION_URL": "ws://127.0.0.1:8000/x", tt.key: tt.val}
			if _, err := NodeFrom(MapEnv(env)); !errors.Is(err, node.ErrConfig) {
				t.Errorf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestNodeLimitsFromEnv(t *testing.T) {
	env := map[string]string{"FAME_DIRECT_ADMISSION_URL": "ws://h/x", "FAME_CHANNEL_IDLE_TIMEOUT": "90s", "FAME_MAX_HANDLERS": "7",
		"FAME_HANDLER_QUEUE": "3", "FAME_MAX_PENDING": "11", "FAME_REPLAY_WINDOW": "2m", "FAME_REPLAY_FUTURE_SKEW": "5s",
		"FAME_REPLAY_CACHE_SIZE": "99"}
	c, err := NodeFrom(MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.ChannelIdleTimeout != 90*time.Second || c.MaxHandlers != 7 || c.HandlerQueue != 3 || c.MaxPending != 11 ||
		c.ReplayWindow != 2*time.Minute || c.ReplayFutureSkew != 5*time.Second || c.ReplayCacheSize != 99 {
		t.Fatalf("got %+v", c)
	}
	for _, bad := range []map[string]string{{"FAME_MAX_HANDLERS": "0"}, {"FAME_REPLAY_WINDOW": "10"}, {"FAME_MAX_PENDING": "x"}} {
		bad["FAME_DIRECT_ADMISSION_URL"] = "ws://h/x"
		if _, err := NodeFrom(MapEnv(bad)); !errors.Is(err, node.ErrConfig) {
			t.Fatalf("%v: %v, want ErrConfig", bad, err)
		}
	}
}

// TestNodeFromEnvURLList: a list of attach URLs (the sentinels of a cluster) dials the first,
// then the next on every later dial, round and round.
func TestNodeFromEnvURLList(t *testing.T) {
	env := map[string]string{"FAME_DIRECT_ADMISSION_URL": "wss://s1:8000/a, wss://s2:8000/a,wss://s3:8000/a"}
	c, err := NodeFrom(MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "wss://s1:8000/a" || c.AttachURL == nil {
		t.Fatalf("URL %q, AttachURL set %v", c.URL, c.AttachURL != nil)
	}
	var got []string
	for range 4 {
		u, err := c.AttachURL(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u)
	}
	if want := "wss://s1:8000/a wss://s2:8000/a wss://s3:8000/a wss://s1:8000/a"; strings.Join(got, " ") != want {
		t.Fatalf("dials %q, want %q", got, want)
	}
	// One URL: no rotation, the static URL as before.
	env["FAME_DIRECT_ADMISSION_URL"] = "ws://127.0.0.1:8000/x"
	if c, err := NodeFrom(MapEnv(env)); err != nil || c.AttachURL != nil || c.URL != "ws://127.0.0.1:8000/x" {
		t.Fatalf("single URL: %q, AttachURL set %v, %v", c.URL, c.AttachURL != nil, err)
	}
}
