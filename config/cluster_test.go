package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/cluster/clustercfg"
)

func envOf(m map[string]string) Getenv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var clusterEnv = map[string]string{
	"FAME_CLUSTER_NAME":     "prod",
	"FAME_CLUSTER_LISTEN":   "0.0.0.0:6222",
	"FAME_CLUSTER_ROUTES":   "nats-route://a:6222, nats-route://b:6222,,nats-route://c:6222",
	"FAME_CLUSTER_TLS_CERT": "/pki/s.pem", "FAME_CLUSTER_TLS_KEY": "/pki/s-key.pem", "FAME_CLUSTER_TLS_CA": "/pki/ca.pem",
	"FAME_CLUSTER_USER": "fame", "FAME_CLUSTER_PASSWORD": "s3cret",
}

func TestClusterConfig(t *testing.T) {
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range clusterEnv {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		file    *ClusterFile
		env     map[string]string
		node    string
		problem string // substring of one problem; "" = none
		check   func(t *testing.T, c clustercfg.Config)
	}{
		{name: "nothing: no cluster", check: func(t *testing.T, c clustercfg.Config) {
			if c.Enabled() {
				t.Fatal("enabled")
			}
		}},
		{name: "embedded from variables", env: clusterEnv, node: "s-a", check: func(t *testing.T, c clustercfg.Config) {
			if !c.Embedded() || c.SentinelID != "s-a" || len(c.Routes) != 3 || c.Replicas != 3 ||
				c.DataDir != "/var/lib/fame/nats" || c.Heartbeat != time.Second || c.ClientListen != clustercfg.DefaultClientListen {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "variables win over the file", env: with("FAME_CLUSTER_HEARTBEAT", "250ms"), node: "s-a",
			file: &ClusterFile{Name: "filename", Listen: "127.0.0.1:1", Replicas: 1, Heartbeat: "5s", LameDuck: "3s", DataDir: "/d"},
			check: func(t *testing.T, c clustercfg.Config) {
				if c.Name != "prod" || c.Listen != "0.0.0.0:6222" || c.Heartbeat != 250*time.Millisecond ||
					c.LameDuck != 3*time.Second || c.Replicas != 1 || c.DataDir != "/d" {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "external NATS with an nkey", node: "s-b", env: map[string]string{
			"FAME_CLUSTER_NAME": "prod", "FAME_CLUSTER_URL": "tls://nats:4222", "FAME_CLUSTER_NKEY_SEED_FILE": "/pki/seed",
			"FAME_CLUSTER_TLS_CERT": "c", "FAME_CLUSTER_TLS_KEY": "k", "FAME_CLUSTER_TLS_CA": "ca", "FAME_CLUSTER_REPLICAS": "3"},
			check: func(t *testing.T, c clustercfg.Config) {
				if c.Embedded() || !c.Enabled() || c.Replicas != 3 || c.Auth.NkeySeedFile != "/pki/seed" {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "no node id", env: clusterEnv, problem: "sentinel id"},
		{name: "node id not a subject token", env: clusterEnv, node: "a.b", problem: "sentinel id"},
		{name: "no TLS", env: with("FAME_CLUSTER_TLS_CA", ""), node: "s", problem: "tls cert, key and ca"},
		{name: "no password", env: with("FAME_CLUSTER_PASSWORD", ""), node: "s", problem: "user and password"},
		{name: "listen and url", env: with("FAME_CLUSTER_URL", "tls://x:4222"), node: "s", problem: "exclusive"},
		{name: "credentials in a route", env: with("FAME_CLUSTER_ROUTES", "nats-route://u:p@a:6222"), node: "s", problem: "credentials belong in auth"},
		{name: "bad name", env: with("FAME_CLUSTER_NAME", "a.b"), node: "s", problem: "name"},
		{name: "bad replicas", env: with("FAME_CLUSTER_REPLICAS", "three"), node: "s", problem: "FAME_CLUSTER_REPLICAS"},
		{name: "bad duration", env: clusterEnv, node: "s", file: &ClusterFile{BindingTTL: "forever"}, problem: "cluster.binding_ttl"},
		{name: "routes without listen", file: &ClusterFile{Name: "x", Routes: []string{"nats-route://a:1"}}, problem: "without listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, problems := ClusterConfig(tc.file, envOf(tc.env), tc.node, "/var/lib/fame/bindings.db")
			if tc.problem == "" {
				if len(problems) > 0 {
					t.Fatalf("problems: %q", problems)
				}
			} else if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.problem) }) {
				t.Fatalf("problems %q lack %q", problems, tc.problem)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestClusterFileKeys: the block decodes strictly (a misspelt key is an error).
func TestClusterFileKeys(t *testing.T) {
	var f struct {
		Cluster *ClusterFile `yaml:"cluster"`
	}
	good := "cluster:\n  name: prod\n  listen: 0.0.0.0:6222\n  routes: [nats-route://a:6222]\n  tls: {cert: c, key: k, ca: ca}\n  auth: {user: u, password: \"${env:FAME_CLUSTER_PASSWORD:}\"}\n  heartbeat: 1s\n"
	if err := Decode([]byte(good), envOf(map[string]string{"FAME_CLUSTER_PASSWORD": "p"}), &f); err != nil {
		t.Fatal(err)
	}
	if f.Cluster == nil || f.Cluster.Auth.Password != "p" || f.Cluster.TLS.CA != "ca" || len(f.Cluster.Routes) != 1 {
		t.Fatalf("%+v", f.Cluster)
	}
	if err := Decode([]byte("cluster:\n  lisen: x\n"), envOf(nil), &f); err == nil {
		t.Fatal("misspelt key accepted")
	}
}
