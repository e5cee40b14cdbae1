package stickiness

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fame-go/fame/security/aft"
)

func TestNegotiate(t *testing.T) {
	on := DefaultConfig()
	off := DefaultConfig()
	off.Enabled = false
	sidOnly := DefaultConfig()
	sidOnly.SecurityLevel = aft.LevelSIDOnly
	custom := DefaultConfig()
	custom.AdvertisedTTL = 90 * time.Second
	tests := []struct {
		name  string
		cfg   Config
		offer string // JSON, "" = no offer
		want  string // JSON of the answer, "null" = none
	}{
		{"no offer enabled", on, "", `{"mode":"attr","enabled":true,"version":1}`},
		{"no offer disabled", off, "", `null`},
		{"disabled", off, `{"mode":"aft","supportedModes":["aft","attr"],"version":1}`, `{"enabled":false,"version":1}`},
		{"reference replica offer", on, `{"mode":"aft","supportedModes":["aft","attr"],"version":1}`, `{"mode":"aft","enabled":true,"ttlSec":30,"version":1}`},
		{"aft only in supported", on, `{"mode":"attr","supportedModes":["attr","aft"],"version":1}`, `{"mode":"aft","enabled":true,"ttlSec":30,"version":1}`},
		{"custom ttl", custom, `{"mode":"aft","version":1}`, `{"mode":"aft","enabled":true,"ttlSec":90,"version":1}`},
		{"attr", on, `{"mode":"attr","version":1}`, `{"mode":"attr","enabled":true,"version":1}`},
		{"sid-only avoids aft", sidOnly, `{"mode":"aft","supportedModes":["aft","attr"],"version":1}`, `{"mode":"attr","enabled":true,"version":1}`},
		{"sid-only aft only", sidOnly, `{"mode":"aft","version":1}`, `{"enabled":false,"version":1}`},
		{"unknown mode", on, `{"mode":"cookie","version":2}`, `{"enabled":false,"version":2}`},
		{"missing version", on, `{"mode":"attr"}`, `{"mode":"attr","enabled":true,"version":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var offer *Offer
			if tc.offer != "" {
				offer = new(Offer)
				if err := json.Unmarshal([]byte(tc.offer), offer); err != nil {
					t.Fatal(err)
				}
			}
			got, err := json.Marshal(Negotiate(tc.cfg, offer))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("answer %s, want %s", got, tc.want)
			}
		})
	}
}
