//go:build interop

package interop

import (
	"fmt"
	"testing"
	"time"
)

// oauth2Server starts `fame oauth2` on a free port with one client and returns its issuer URL.
func (c *caseEnv) oauth2Server(clientID, secret string) string {
	c.t.Helper()
	fame := fameBin.need(c.t)
	port := freePort(c.t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := []string{"FAME_JWT_ISSUER=" + issuer, "FAME_JWT_CLIENT_ID=" + clientID,
		"FAME_JWT_CLIENT_SECRET=" + secret, "FAME_JWT_AUDIENCE=fame.fabric"}
	p := startProc(c.t, c, "fame-oauth2", repoRoot, []string{fame, "oauth2", "-listen", fmt.Sprintf("127.0.0.1:%d", port)}, env)
	if err := waitHTTP200(p, issuer+"/healthz", readyTimeout); err != nil {
		c.t.Fatal(err)
	}
	return issuer
}

// gatedEnv is what a peer needs for direct admission with an OAuth2 client-credentials token.
func gatedEnv(issuer, clientID, secret string) []string {
	return []string{"FAME_ADMISSION_PROFILE=direct", "FAME_SECURITY_PROFILE=gated",
		"FAME_ADMISSION_TOKEN_URL=" + issuer + "/oauth/token", "FAME_ADMISSION_CLIENT_ID=" + clientID,
		"FAME_ADMISSION_CLIENT_SECRET=" + secret, "FAME_JWT_AUDIENCE=fame.fabric"}
}

// Gated row: the real TS agents and client get OAuth2 tokens from `fame oauth2` and present them
// to our sentinel (direct admission, gated profile); a peer with a wrong secret is refused.
func testGatedOAuth2(t *testing.T) {
	c := newCase(t)
	issuer := c.oauth2Server("peer-client", "peer-secret")
	port := c.fameSentinel("FAME_ADMISSION_PROFILE=direct", "FAME_SECURITY_PROFILE=gated",
		"FAME_JWT_TRUSTED_ISSUER="+issuer, "FAME_JWT_AUDIENCE=fame.fabric")
	env := gatedEnv(issuer, "peer-client", "peer-secret")
	c.tsAgent("ts-math-1", port, append([]string{pool}, env...)...)
	c.tsAgent("ts-math-2", port, append([]string{pool}, env...)...)
	cl := c.tsClient("ts-client", port, append([]string{"WHOAMI=4"}, env...)...)
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "ts-math-1", "ts-math-2")

	// Without a valid token the sentinel refuses the attach.
	bad := c.startTSClient("ts-client-bad-secret", port, gatedEnv(issuer, "peer-client", "wrong")...)
	code, err := bad.waitExit(90 * time.Second)
	if err != nil {
		t.Fatalf("client with a wrong secret did not exit: %v", err)
	}
	if code == 0 {
		t.Fatal("client with a wrong secret succeeded")
	}
}

// Gated row, mixed: the real TS client calls Go replicas and our Go client calls TS replicas,
// every node with an OAuth2 client-credentials token from `fame oauth2`.
func testGatedOAuth2Mixed(t *testing.T) {
	c := newCase(t)
	issuer := c.oauth2Server("peer-client", "peer-secret")
	port := c.fameSentinel("FAME_ADMISSION_PROFILE=direct", "FAME_SECURITY_PROFILE=gated",
		"FAME_JWT_TRUSTED_ISSUER="+issuer, "FAME_JWT_AUDIENCE=fame.fabric")
	env := gatedEnv(issuer, "peer-client", "peer-secret")
	c.goAgent("go-math-1", port, append([]string{pool}, env...)...)
	c.tsAgent("ts-math-2", port, append([]string{pool}, env...)...)
	cl := c.tsClient("ts-client", port, append([]string{"WHOAMI=4"}, env...)...)
	checkMath(t, cl, 1)
	gc := c.goClient("go-client", port, []string{"-whoami", "4"}, env...)
	checkMath(t, gc, 1)
}
