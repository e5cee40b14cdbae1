package clustercfg

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	base := Config{Name: "c", SentinelID: "s1", Listen: "127.0.0.1:6222", DataDir: "/d",
		TLS: TLSFiles{Cert: "c", Key: "k", CA: "ca"}, Auth: Auth{User: "u", Password: "p"}}
	for _, tc := range []struct {
		name   string
		routes []string
		want   int
	}{
		{"alone", nil, 1},
		{"self only", []string{"nats-route://127.0.0.1:6222"}, 1},
		{"two others and self", []string{"nats-route://127.0.0.1:6222", "nats-route://b:6222", "nats-route://c:6222"}, 3},
		{"five", []string{"nats-route://a:1", "nats-route://b:1", "nats-route://c:1", "nats-route://d:1"}, 3},
		{"duplicates", []string{"nats-route://b:1", "nats-route://b:1"}, 2},
	} {
		c := base
		c.Routes = tc.routes
		n, err := c.Normalize()
		if err != nil || n.Replicas != tc.want {
			t.Errorf("%s: replicas %d (want %d), %v", tc.name, n.Replicas, tc.want, err)
		}
	}
	if c, err := (Config{}).Normalize(); err != nil || c.Enabled() {
		t.Fatalf("zero config: %+v %v", c, err)
	}
	bad := base
	bad.Replicas = 9
	bad.SentinelID = "a b"
	_, err := bad.Normalize()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("%v", err)
	}
	if !ValidID("sentinel-1_a") || ValidID("a.b") || ValidID("") || ValidID("*") {
		t.Fatal("ValidID")
	}
}
