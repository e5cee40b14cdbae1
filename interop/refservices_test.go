//go:build interop

package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// pyStrictServices starts the reference's own Python services for the strict stack:
// `python -m naylence.fame.fastapi.oauth2_server`, `...welcome.node_welcome_server` (an
// AdvancedWelcomeService: static placement under the sentinel, JWT tickets, OAuth2 authorizer, CA
// grants) and `...security.cert.ca_server` (signing with the root made by `fame ca init`), each
// configured the way the reference example configures them (FAME_CONFIG files and env).
func (c *caseEnv) pyStrictServices(sentinelPort int) *strictStack {
	c.t.Helper()
	py := needPython(c.t)
	fame := fameBin.need(c.t)
	dir := c.t.TempDir()
	s := &strictStack{sentinelPort: sentinelPort, caDir: filepath.Join(dir, "ca")}
	if out, err := runQuiet(fame, "ca", "init", "-dir", s.caDir); err != nil {
		c.t.Fatalf("fame ca init: %v\n%s", err, out)
	}
	po, pw, pc := freePort(c.t), freePort(c.t), freePort(c.t)
	s.oauth2URL = fmt.Sprintf("http://127.0.0.1:%d", po)
	s.welcomeURL = fmt.Sprintf("http://127.0.0.1:%d", pw)
	s.caURL = fmt.Sprintf("http://127.0.0.1:%d", pc)
	s.ticketIssuer = s.welcomeURL + "/fame/welcome"
	welcomeJWKS := s.ticketIssuer + "/.well-known/jwks.json"

	welcomeYAML := fmt.Sprintf(`welcome:
  type: AdvancedWelcomeService
  ca_service_url: %s/fame/v1/ca
  transport: {type: WebSocketTransportProvisioner, url: "%s"}
  placement: {type: StaticNodePlacementStrategy, target_system_id: %s, target_physical_path: /%s}
  token_issuer: {type: JWTTokenIssuer, issuer: "%s", audience: fame.fabric}
  authorizer:
    type: OAuth2Authorizer
    issuer: "%s"
    jwks_url: "%s/.well-known/jwks.json"
    required_scopes: [node.connect]
    require_scope: true
    algorithm: EdDSA
    audience: fame.fabric
`, s.caURL, attachURL(sentinelPort), stackSentinelID, stackSentinelID, s.ticketIssuer, s.oauth2URL, s.oauth2URL)
	caYAML := fmt.Sprintf(`ca:
  authorizer:
    type: OAuth2Authorizer
    issuer: "%s"
    jwks_url: "%s"
    require_scope: false
    algorithm: EdDSA
    audience: ca
`, s.ticketIssuer, welcomeJWKS)
	welcomeCfg, caCfg := filepath.Join(dir, "welcome.yml"), filepath.Join(dir, "ca.yml")
	for f, body := range map[string]string{welcomeCfg: welcomeYAML, caCfg: caYAML} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
	rootCA := filepath.Join(s.caDir, "root-ca.crt")
	oauth := startProc(c.t, c, "py-oauth2", dir, []string{py, "-m", "naylence.fame.fastapi.oauth2_server"},
		[]string{"APP_HOST=127.0.0.1", fmt.Sprintf("APP_PORT=%d", po), "FAME_JWT_ISSUER=" + s.oauth2URL,
			"FAME_JWT_CLIENT_ID=" + stackClientID, "FAME_JWT_CLIENT_SECRET=" + stackClientSecret,
			"FAME_JWT_AUDIENCE=fame.fabric", "FAME_JWT_ALLOWED_SCOPES=node.connect", "FAME_LOG_LEVEL=info"})
	welcome := startProc(c.t, c, "py-welcome", dir, []string{py, "-m", "naylence.fame.welcome.node_welcome_server"},
		[]string{"FAME_APP_HOST=127.0.0.1", fmt.Sprintf("FAME_APP_PORT=%d", pw), "FAME_CONFIG=" + welcomeCfg, "FAME_LOG_LEVEL=info"})
	ca := startProc(c.t, c, "py-ca", dir, []string{py, "-m", "naylence.fame.security.cert.ca_server"},
		[]string{"FAME_APP_HOST=127.0.0.1", fmt.Sprintf("FAME_APP_PORT=%d", pc), "FAME_CONFIG=" + caCfg, "FAME_CA_CERTS=" + rootCA,
			"FAME_CA_CERT_FILE=" + rootCA, "FAME_CA_KEY_FILE=" + filepath.Join(s.caDir, "root-ca.key"), "FAME_LOG_LEVEL=info"})
	for _, w := range []struct {
		p   *proc
		url string
	}{{oauth, s.oauth2URL + "/.well-known/jwks.json"}, {welcome, welcomeJWKS}, {ca, s.caURL + "/fame/v1/ca/health"}} {
		if err := waitHTTP200(w.p, w.url, readyTimeout); err != nil {
			c.t.Fatal(err)
		}
	}
	s.fillNodeEnv(rootCA, welcomeJWKS)
	return s
}

// Row 2: the seed example with the reference's own Python oauth2 / welcome / CA services and our
// sentinel: our sentinel accepts the reference's attach tickets and certificates. Python client
// and replicas, then our Go client against the same replicas.
func testPyStrictReferenceServices(t *testing.T) {
	const calls = 30
	c := newCase(t)
	port := freePort(t)
	s := c.pyStrictServices(port)
	c.fameSentinelOn(port, s.fameSentinelEnv()...)
	c.pyAgent("py-math-1", port, append([]string{pool}, s.nodeEnv...)...)
	c.pyAgent("py-math-2", port, append([]string{pool}, s.nodeEnv...)...)
	cl := c.pyClient("py-client", port, append([]string{fmt.Sprintf("WHOAMI=%d", calls), "FAME_SHOW_ENVELOPES=true"}, s.nodeEnv...)...)
	checkMath(t, cl, 1)
	counts := checkWhoami(t, cl, calls, "py-math-1", "py-math-2")
	if len(counts) != 1 {
		t.Errorf("one session spread over replicas under AFT strict: %s", formatCounts(counts))
	}
	t.Logf("python client whoami: %s; wire: %s", formatCounts(counts), checkChannelOnWire(t, cl))
	gc := c.goClient("go-client", port, []string{"-whoami", "10"}, append([]string{"FAME_SHOW_ENVELOPES=true"}, s.nodeEnv...)...)
	checkMath(t, gc, 1)
	gcounts := checkWhoami(t, gc, 10, "py-math-1", "py-math-2")
	if len(gcounts) != 1 {
		t.Errorf("Go client session spread over replicas: %s", formatCounts(gcounts))
	}
	t.Logf("go client whoami: %s; wire: %s", formatCounts(gcounts), checkChannelOnWire(t, gc))
}
