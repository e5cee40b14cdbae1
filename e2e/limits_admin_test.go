package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAdminToken: with FAME_ADMIN_TOKEN set, /stats (every node's id, path and remote address),
// /metrics and /debug/pprof need the bearer token; /healthz and /readyz stay open.
func TestAdminToken(t *testing.T) {
	const token = "s3cret-admin-token-0123456789"
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": token, "FAME_PPROF": "true"})
	f.startReplica("victim", "fame.fabric", nil, nil)
	get := func(path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+f.addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/stats", "/metrics", "/debug/pprof/"} {
		for _, c := range []struct{ auth, reason string }{
			{"", "admin token required"},
			{"Basic dXNlcjpwYXNz", "not a Bearer token"},
			{"Bearer " + token + "x", "admin token invalid"},
			{"Bearer " + token[:len(token)-1], "admin token invalid"},
		} {
			code, body := get(path, c.auth)
			if code != http.StatusUnauthorized || !strings.Contains(body, c.reason) {
				t.Fatalf("%s with %q: %d %q, want 401 %q", path, c.auth, code, body, c.reason)
			}
		}
		if code, body := get(path, "Bearer "+token); code != http.StatusOK {
			t.Fatalf("%s with the token: %d %s", path, code, body)
		}
	}
	if code, body := get("/stats", "bearer "+token); code != http.StatusOK || !strings.Contains(body, `"victim"`) {
		t.Fatalf("/stats with the token: %d %s", code, body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/fame/v1/attach/health"} {
		if code, _ := get(path, ""); code != http.StatusOK {
			t.Fatalf("%s without a token: %d, want it open", path, code)
		}
	}
	if n := refusals(t, f, "admin_token"); n != 12 {
		t.Fatalf("admin_token refusals counted %v, want 12", n)
	}
	victimServes(t, f, nil)
}
