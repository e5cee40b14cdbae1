package sentinel

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// TestStatsFieldsCamelCase: every field name of /stats is camelCase, and the set is the one
// documented in doc.go ("/stats"). Map keys that are data (addresses, refusal reasons) are
// not field names and are not checked.
func TestStatsFieldsCamelCase(t *testing.T) {
	s := fakeWiredSentinel(t, nil)
	c := newConn(s, nil, "test", "rep", "downstream")
	c.systemID, c.path = "rep", s.path+"/rep"
	c.sid = envelope.SecureDigest(c.path)
	s.routes.attach(c)
	s.routes.bind(c, mustAddr(t, "math@*.fame.fabric"))

	w := httptest.NewRecorder()
	s.handleStats(w, httptest.NewRequest("GET", "/stats", nil))
	var top map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &top); err != nil {
		t.Fatalf("%v: %s", err, w.Body.Bytes())
	}
	peers, _ := top["peers"].([]any)
	if len(peers) != 1 {
		t.Fatalf("peers: %v", top["peers"])
	}
	st, _ := top["stickiness"].(map[string]any)
	objects := []struct {
		name string
		obj  any
		want []string
	}{
		{"top level", top, []string{"id", "path", "routingEpoch", "peers", "routes", "stickiness", "replicaDrains"}},
		{"peers[]", peers[0], []string{"systemId", "path", "remote", "attachedAt", "received", "sent", "queued",
			"queuedBytes", "pending", "stickySessions"}},
		{"routes", top["routes"], []string{"children", "exact", "pools", "capabilities"}},
		{"stickiness", st, []string{"size", "channels", "hits", "misses", "channelHits", "channelMisses", "evictions",
			"expired", "repins", "purgedSessions", "purgedChannels", "aftVerified", "aftNoClientSid", "aftRefused",
			"storeDropped", "store"}},
		{"stickiness.store", st["store"], []string{"dropped", "failed", "corrupt", "deletedExpired", "deletedBad", "deletedMembers"}},
	}
	for _, o := range objects {
		m, ok := o.obj.(map[string]any)
		if !ok {
			t.Errorf("%s: not an object: %v", o.name, o.obj)
			continue
		}
		var got []string
		for k := range m {
			got = append(got, k)
			if !camel(k) {
				t.Errorf("%s: field %q is not camelCase", o.name, k)
			}
		}
		sort.Strings(got)
		want := slices.Clone(o.want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: fields %v, documented %v", o.name, got, want)
		}
	}
}

// camel: starts lower case, letters and digits only.
func camel(k string) bool {
	if k == "" || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
