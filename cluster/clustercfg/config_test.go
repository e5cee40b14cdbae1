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

func TestDataPathConfig(t *testing.T) {
	base := Config{Name: "c", SentinelID: "s1", Listen: "127.0.0.1:6222", DataDir: "/d",
		TLS: TLSFiles{Cert: "c", Key: "k", CA: "ca"}, Auth: Auth{User: "u", Password: "p"}}
	for _, tc := range []struct {
		name              string
		listen, data, adv string
		url               string
		noPassword        bool
		wantData          string // effective DataListen
		wantOn, wantErr   bool
	}{
		{name: "default: listen's host, any port", listen: "127.0.0.1:6222", wantData: "127.0.0.1:0", wantOn: true},
		{name: "named host", listen: "s1.internal:6222", wantData: "s1.internal:0", wantOn: true},
		{name: "unspecified host: off", listen: "0.0.0.0:6222", wantData: ""},
		{name: "unspecified host with advertise", listen: "0.0.0.0:6222", adv: "s1", wantData: "0.0.0.0:0", wantOn: true},
		{name: "explicit", listen: "0.0.0.0:6222", data: "0.0.0.0:7422", adv: "s1:7422", wantData: "0.0.0.0:7422", wantOn: true},
		{name: "explicit off", listen: "127.0.0.1:6222", data: DataOff, wantData: DataOff},
		{name: "explicit unspecified without advertise", listen: "0.0.0.0:6222", data: ":7422", wantErr: true},
		{name: "malformed", listen: "127.0.0.1:6222", data: "7422", wantErr: true},
		{name: "external NATS: off unless set", url: "tls://n:4222", wantData: ""},
		{name: "external NATS, nkey only, data path asked", url: "tls://n:4222", data: "127.0.0.1:7422", noPassword: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.Listen, c.DataListen, c.DataAdvertise = tc.listen, tc.data, tc.adv
			if tc.url != "" {
				c.URL, c.DataDir = tc.url, ""
			}
			if tc.noPassword {
				c.Auth = Auth{NkeySeedFile: "seed"}
			}
			n, err := c.Normalize()
			if tc.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("want a config error, got %v (%+v)", err, n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.DataListen != tc.wantData || n.DataPath() != tc.wantOn {
				t.Fatalf("data_listen %q on %v, want %q on %v", n.DataListen, n.DataPath(), tc.wantData, tc.wantOn)
			}
			// Normalize is idempotent: an "off" stays off.
			if again, err := n.Normalize(); err != nil || again.DataListen != n.DataListen {
				t.Fatalf("second Normalize: %q %v", again.DataListen, err)
			}
		})
	}
}
