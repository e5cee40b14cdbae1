//go:build interop

package interop

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

// strictStack is the reference "secure stickiness" deployment on loopback: an OAuth2 server, a
// welcome service, a CA and a sentinel (ours or the reference's), every node admitted through
// welcome with a SPIFFE certificate, strict-overlay signing, channel encryption and AFT
// stickiness at level strict.
type strictStack struct {
	sentinelPort int
	nodeEnv      []string // what every node (Go or Python) needs to join
	caDir        string
	oauth2URL    string
	welcomeURL   string
	caURL        string
	ticketIssuer string // the welcome service's ticket issuer, trusted by the sentinel
}

const (
	stackClientID     = "stack-client"
	stackClientSecret = "stack-client-secret"
	stackSentinelID   = "Cb8WVCC4ML5RsFM" // the welcome service places every node under this id
	stackTicketIssuer = "https://welcome/fame/welcome"
)

// strictProfileEnv is the profile every process of the stack shares (compose/env/profile-strict.env).
var strictProfileEnv = []string{"FAME_SECURITY_PROFILE=strict-overlay", "FAME_DEFAULT_ENCRYPTION_LEVEL=channel",
	"FAME_ADMISSION_PROFILE=welcome", "FAME_JWT_AUDIENCE=fame.fabric"}

// fameStrictServices starts our `fame oauth2`, `fame welcome` and `fame ca` for a sentinel that
// will listen on sentinelPort, and returns the stack with the node environment filled in.
//
// admitSentinel also grants the sentinel's own id: the reference Python sentinel is itself
// admitted through welcome (it fetches its certificate as a node); ours is not.
func (c *caseEnv) fameStrictServices(sentinelPort int, admitSentinel bool) *strictStack {
	c.t.Helper()
	fame := fameBin.need(c.t)
	s := &strictStack{sentinelPort: sentinelPort, caDir: filepath.Join(c.t.TempDir(), "ca")}
	s.ticketIssuer = stackTicketIssuer
	if out, err := runQuiet(fame, "ca", "init", "-dir", s.caDir); err != nil {
		c.t.Fatalf("fame ca init: %v\n%s", err, out)
	}
	po, pw, pc := freePort(c.t), freePort(c.t), freePort(c.t)
	s.oauth2URL = fmt.Sprintf("http://127.0.0.1:%d", po)
	s.welcomeURL = fmt.Sprintf("http://127.0.0.1:%d", pw)
	s.caURL = fmt.Sprintf("http://127.0.0.1:%d", pc)
	welcomeJWKS := s.welcomeURL + "/fame/welcome/.well-known/jwks.json"

	oauth := startProc(c.t, c, "fame-oauth2", repoRoot, []string{fame, "oauth2", "-listen", fmt.Sprintf("127.0.0.1:%d", po)},
		[]string{"FAME_JWT_ISSUER=" + s.oauth2URL, "FAME_JWT_CLIENT_ID=" + stackClientID, "FAME_JWT_CLIENT_SECRET=" + stackClientSecret,
			"FAME_JWT_AUDIENCE=fame.fabric", "FAME_JWT_ALLOWED_SCOPES=node.connect"})
	ids := "*"
	if admitSentinel {
		ids += "," + stackSentinelID
	}
	welcome := startProc(c.t, c, "fame-welcome", repoRoot, []string{fame, "welcome", "-listen", fmt.Sprintf("127.0.0.1:%d", pw)},
		[]string{"FAME_WELCOME_TARGET_SYSTEM_ID=" + stackSentinelID, "FAME_WELCOME_ATTACH_URL=" + attachURL(sentinelPort),
			"FAME_CA_SERVICE_URL=" + s.caURL + "/fame/v1/ca", "FAME_WELCOME_ISSUER=" + stackTicketIssuer,
			// One OAuth2 client for every node of this stack (the compose stack separates replicas
			// and client): it may use any system id and serve the math domain.
			"FAME_WELCOME_GRANTS=sub=" + stackClientID + " system_ids=" + ids + " logicals=*.fame.fabric,fame.fabric",
			"FAME_JWT_TRUSTED_ISSUER=" + s.oauth2URL,
			"FAME_JWT_AUDIENCE=fame.fabric"})
	ca := startProc(c.t, c, "fame-ca", repoRoot, []string{fame, "ca", "-dir", s.caDir, "-listen", fmt.Sprintf("127.0.0.1:%d", pc)},
		[]string{"FAME_CA_CERTS=" + filepath.Join(s.caDir, "root-ca.crt"), "FAME_CA_TRUSTED_ISSUER=" + stackTicketIssuer,
			"FAME_CA_JWKS_URL=" + welcomeJWKS})
	for _, w := range []struct {
		p   *proc
		url string
	}{{oauth, s.oauth2URL + "/healthz"}, {welcome, s.welcomeURL + "/healthz"}, {ca, s.caURL + "/fame/v1/ca/health"}} {
		if err := waitHTTP200(w.p, w.url, readyTimeout); err != nil {
			c.t.Fatal(err)
		}
	}
	s.fillNodeEnv(filepath.Join(s.caDir, "root-ca.crt"), welcomeJWKS)
	return s
}

func (s *strictStack) fillNodeEnv(rootCA, welcomeJWKS string) {
	s.nodeEnv = append(append([]string{}, strictProfileEnv...),
		"FAME_ADMISSION_SERVICE_URL="+s.welcomeURL+"/fame/v1/welcome/hello",
		"FAME_ADMISSION_TOKEN_URL="+s.oauth2URL+"/oauth/token",
		"FAME_ADMISSION_CLIENT_ID="+stackClientID, "FAME_ADMISSION_CLIENT_SECRET="+stackClientSecret,
		"FAME_CA_CERTS="+rootCA, "FAME_CA_SERVICE_URL="+s.caURL+"/fame/v1/ca",
		// The Python runtime resolves these two on every node under strict-overlay (as the
		// reference example's .env.agent sets them); our Go nodes ignore them.
		"FAME_JWT_TRUSTED_ISSUER="+s.oauth2URL, "FAME_JWKS_URL="+welcomeJWKS)
}

// sentinelEnv is our sentinel's strict configuration for this stack.
func (s *strictStack) fameSentinelEnv() []string {
	return append(append([]string{}, strictProfileEnv...),
		"FAME_NODE_ID="+stackSentinelID, "FAME_STICKINESS_LEVEL=strict",
		"FAME_CA_CERTS="+filepath.Join(s.caDir, "root-ca.crt"),
		"FAME_JWT_TRUSTED_ISSUER="+s.ticketIssuer,
		"FAME_JWKS_URL="+s.welcomeURL+"/fame/welcome/.well-known/jwks.json")
}

// fameStrict starts the whole stack with our services and our sentinel.
func (c *caseEnv) fameStrict() *strictStack {
	c.t.Helper()
	port := freePort(c.t)
	s := c.fameStrictServices(port, false)
	c.fameSentinelOn(port, s.fameSentinelEnv()...)
	return s
}

// fameSentinelOn starts our sentinel on the given port and waits for /healthz.
func (c *caseEnv) fameSentinelOn(port int, env ...string) {
	c.t.Helper()
	fame := fameBin.need(c.t)
	env = append([]string{"FAME_LISTENER_HOST=127.0.0.1", fmt.Sprintf("FAME_LISTENER_PORT=%d", port)}, env...)
	if c.recordDir != "" {
		env = append(env, "FAME_SHOW_ENVELOPES=true")
	}
	p := startProc(c.t, c, "fame-sentinel", repoRoot, []string{fame, "sentinel"}, env)
	if err := waitHTTP200(p, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), readyTimeout); err != nil {
		c.t.Fatal(err)
	}
}

// runQuiet runs a short command and returns its combined output.
func runQuiet(argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
}
