package node

import (
	"errors"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("FAME_DIRECT_ADMISSION_URL", "ws://127.0.0.1:8000/fame/v1/attach/ws/downstream")
	t.Setenv("FAME_NODE_ID", "fixedNodeId00001")
	t.Setenv("FAME_NODE_ID_SALT", "s1")
	t.Setenv("FAME_DELIVERY_PROFILE", "at-least-once")
	t.Setenv("FAME_DELIVERY_MAX_RETRIES", "3")
	t.Setenv("FAME_DELIVERY_BASE_DELAY_MS", "250")
	t.Setenv("FAME_DELIVERY_BACKOFF_FACTOR", "1.5")
	t.Setenv("FAME_FLOW_CONTROL", "0")
	t.Setenv("FAME_SHOW_ENVELOPES", "true")
	t.Setenv("FAME_REQUESTED_LOGICALS", "*.fame.fabric, fame.fabric")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.SystemID != "fixedNodeId00001" || c.IDSalt != "s1" || c.Delivery != AtLeastOnce || !c.DisableFlowControl || !c.ShowEnvelopes {
		t.Errorf("config = %+v", c)
	}
	if c.SenderRetry.MaxRetries != 3 || c.SenderRetry.BaseDelay != 250*time.Millisecond || c.SenderRetry.Factor != 1.5 || c.SenderRetry.MaxDelay != DefaultSenderRetry.MaxDelay {
		t.Errorf("sender retry = %+v", c.SenderRetry)
	}
	if len(c.RequestedLogicals) != 2 || c.RequestedLogicals[0] != "*.fame.fabric" || c.RequestedLogicals[1] != "fame.fabric" {
		t.Errorf("logicals = %q", c.RequestedLogicals)
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	tests := []struct{ name, key, val string }{
		{"no url", "FAME_DIRECT_ADMISSION_URL", ""},
		{"http url", "FAME_DIRECT_ADMISSION_URL", "http://x"},
		{"bad delivery", "FAME_DELIVERY_PROFILE", "exactly-once"},
		{"bad retries", "FAME_DELIVERY_MAX_RETRIES", "-1"},
		{"bad factor", "FAME_DELIVERY_BACKOFF_FACTOR", "fast"},
		{"unknown security profile", "FAME_SECURITY_PROFILE", "overlay-ish"},
		{"unknown encryption level", "FAME_DEFAULT_ENCRYPTION_LEVEL", "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FAME_DIRECT_ADMISSION_URL", "ws://127.0.0.1:8000/x")
			t.Setenv(tt.key, tt.val)
			if _, err := ConfigFromEnv(); !errors.Is(err, ErrConfig) {
				t.Errorf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestDefaultsAndRandomID(t *testing.T) {
	a := Config{URL: "ws://x"}.withDefaults()
	b := Config{URL: "ws://x"}.withDefaults()
	if len(a.SystemID) != 16 || a.SystemID == b.SystemID {
		t.Errorf("system ids %q %q: want distinct random 16-char ids", a.SystemID, b.SystemID)
	}
	if a.HeartbeatInterval != 15*time.Second || a.CallTimeout != 30*time.Second || a.ReconnectMin != time.Second || a.ReconnectMax != 30*time.Second {
		t.Errorf("timing defaults = %+v", a)
	}
	if len(a.RequestedLogicals) != 1 || a.RequestedLogicals[0] != "*" {
		t.Errorf("client logicals = %q", a.RequestedLogicals)
	}
}

func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{MaxRetries: 5, BaseDelay: time.Second, MaxDelay: 10 * time.Second, Factor: 2}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := p.delay(i, nil); got != w {
			t.Errorf("delay(%d) = %v, want %v", i, got, w)
		}
	}
	p.Jitter = 100 * time.Millisecond
	for i := 0; i < 20; i++ {
		if d := p.delay(0, jitter); d < time.Second || d >= time.Second+p.Jitter {
			t.Fatalf("jittered delay %v out of range", d)
		}
	}
}
