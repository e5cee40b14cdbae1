package node

import (
	"testing"
	"time"
)

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
