package cluster

import "testing"

func TestSharedUp(t *testing.T) {
	for _, m := range shared.members {
		if m.Embedded.Routes() < 2 {
			t.Errorf("%s routes %d", m.Config.SentinelID, m.Embedded.Routes())
		}
	}
}
