package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clusterSpec shapes a cluster of `fame sentinel` processes for the signing-profile tests:
// node is the YAML of each sentinel's security and admission (lines indented by two spaces,
// under node:), env(i) the variables of sentinel i (nil: none), started before any process
// (so env may close over servers whose handlers are set later).
type clusterSpec struct {
	n     int
	grace string
	node  string
	env   func(i int) map[string]string
}

// startClusterSpec is startClusterWith with the security and admission blocks and the
// environment of each sentinel chosen by the test.
func startClusterSpec(t *testing.T, sp clusterSpec) *clusterFixture {
	t.Helper()
	dir := t.TempDir()
	cf := &clusterFixture{t: t, pki: newClusterPKI(t, dir)}
	n := sp.n
	ports := freePorts(t, 2*n)
	var routes []string
	for i := 0; i < n; i++ {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("s%d", i)
		cf.ids = append(cf.ids, id)
		cf.clientPort = append(cf.clientPort, ports[n+i])
		file := filepath.Join(dir, id+".yml")
		body := fmt.Sprintf(`node:
  type: Sentinel
  id: %s
  listeners:
    - {type: HttpListener, host: "${env:FAME_LISTENER_HOST:127.0.0.1}", port: "${env:FAME_LISTENER_PORT:0}"}
    - {type: WebSocketListener, host: "${env:FAME_LISTENER_HOST:127.0.0.1}", port: "${env:FAME_LISTENER_PORT:0}"}
  requested_logicals: [fame.fabric]
%scluster:
  name: e2e
  listen: 127.0.0.1:%d
  client_listen: 127.0.0.1:%d
  routes: [%s]
  data_dir: %s
  grace: %s
  tls: {cert: %s, key: %s, ca: %s}
  auth: {user: %s, password: %q}
`, id, sp.node, ports[i], ports[n+i], strings.Join(routes, ", "), filepath.Join(dir, id+"-nats"), sp.grace,
			cf.pki.cert, cf.pki.key, cf.pki.ca, clusterUser, clusterPass)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var env map[string]string
		if sp.env != nil {
			env = sp.env(i)
		}
		cf.procs = append(cf.procs, startFameSentinel(t, env, "-c", file))
	}
	for i, p := range cf.procs {
		waitUntil(t, 30*time.Second, cf.ids[i]+" hearing its peers", func() bool {
			return p.metric(t, "fame_cluster_peer_transitions_total", `state="up"`) >= float64(n-1)
		})
	}
	return cf
}

// clusterKeys reads sentinel i's fame_cluster_keys_total{op}.
func (cf *clusterFixture) clusterKeys(i int, op string) float64 {
	cf.t.Helper()
	return cf.procs[i].metric(cf.t, "fame_cluster_keys_total", `op="`+op+`"`)
}
