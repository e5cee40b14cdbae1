package admit

import (
	"testing"
	"time"

	"github.com/fame-go/fame/security"
)

// TestTenSecondCredentialsFor20Seconds runs a node's view of admission with
// 10 s access tokens, tickets and certificates for 20 s of simulated time
// (all services and verifiers on one fake clock, 1 ms leeway): at every
// 250 ms step the token, ticket and certificate in hand must verify, and
// each must have been renewed about every 6.7 s (2/3 of 10 s).
func TestTenSecondCredentialsFor20Seconds(t *testing.T) {
	clk := newFakeClock()
	const ttl = 10 * time.Second
	s := newStack(t, stackOpts{clock: clk.Now, tokenTTL: ttl, ticketTTL: ttl, welcomeTTL: ttl, certTTL: ttl})
	w := s.welcomeConfig(t, "r1node", "*.fame.fabric")
	oauth := w.TokenSource.(*OAuth2Source)
	ws, err := NewWelcomeTokenSource(w)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewCertSource(CertConfig{Grants: ws, Trust: s.trust, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]map[string]bool{"token": {}, "ticket": {}, "cert": {}}
	changed := map[string][]time.Time{}
	last := map[string]string{}
	note := func(what, v string) {
		distinct[what][v] = true
		if last[what] != v {
			last[what] = v
			changed[what] = append(changed[what], clk.Now())
		}
	}
	end := clk.Now().Add(20 * time.Second)
	for ; !clk.Now().After(end); clk.Advance(250 * time.Millisecond) {
		tok, err := oauth.Token(t.Context())
		if err != nil {
			t.Fatalf("at %s: token: %v", clk.Now().Format(time.TimeOnly), err)
		}
		s.verifyAccess(t, tok)
		tk, err := ws.Token(t.Context())
		if err != nil {
			t.Fatalf("at %s: ticket: %v", clk.Now().Format(time.TimeOnly), err)
		}
		s.verifyTicket(t, tk, "r1node")
		c, err := cs.Certificate(t.Context())
		if err != nil {
			t.Fatalf("at %s: certificate: %v", clk.Now().Format(time.TimeOnly), err)
		}
		if _, err := security.VerifyNodeCert(c.ChainPEM, s.trust, c.SID, clk.Now()); err != nil {
			t.Fatalf("at %s: certificate: %v", clk.Now().Format(time.TimeOnly), err)
		}
		note("token", tok)
		note("ticket", tk)
		note("cert", string(c.ChainPEM))
	}
	// Issued at 0, ~6.7, ~13.3, ~20 s: 3 or 4 (second truncation of JWT
	// times can move a renewal by a step).
	for what, set := range distinct {
		if n := len(set); n < 3 || n > 4 {
			t.Errorf("%d distinct %ss in 20 s with a 10 s TTL, want 3..4", n, what)
		}
	}
	// Renewed at 2/3 of the life left at issue: JWT and X.509 times are
	// whole seconds, so an interval is 6..7 s, never near the 10 s expiry.
	for what, at := range changed {
		for i := 1; i < len(at); i++ {
			if d := at[i].Sub(at[i-1]); d < 6*time.Second || d > 7*time.Second {
				t.Errorf("%s renewed after %v, want 6..7 s", what, d)
			}
		}
	}
	// The services saw exactly as many requests as there were renewals.
	if got, want := s.tokens.Load(), int64(len(distinct["token"])); got != want {
		t.Errorf("token requests %d, distinct tokens %d", got, want)
	}
	if got, want := s.signs.Load(), int64(len(distinct["cert"])); got != want {
		t.Errorf("sign requests %d, distinct certificates %d", got, want)
	}
}
