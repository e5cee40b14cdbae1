package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
)

const statusAdminToken = "status-page-admin-token-0123456789"

// TestAdminStatusPageAuth plays an outsider against GET /admin/ and /admin/status.json with a
// raw HTTP client: no credentials get 401 and the login form, none of the page's data; a wrong
// token (bearer or the login form) gets 403 and is counted as an admin_token refusal; the right
// one through the form gets a session cookie that opens the page. The cookie outlives a restart
// with the same token and is refused once the admin token changes.
func TestAdminStatusPageAuth(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": statusAdminToken})
	f.startReplica("victim", "*.fame.fabric", nil, nil)
	waitUntil(t, 5e9, "the victim in its pool", func() bool {
		_, body := statusGet(t, f, "/admin/status.json", "Bearer "+statusAdminToken, nil)
		return strings.Contains(body, `"math@*.fame.fabric"`)
	})

	for _, path := range []string{"/admin/", "/admin/status.json"} {
		before := refusals(t, f, "admin_token")
		resp, body := statusGet(t, f, path, "", nil)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "victim") || strings.Contains(body, "math@") {
			t.Fatalf("%s without credentials: %d %q", path, resp.StatusCode, body)
		}
		if path == "/admin/" && (!strings.Contains(body, `<form class="login" method="post" action="/admin/login">`) ||
			strings.Contains(body, "<table") || resp.Header.Get("Content-Security-Policy") == "") {
			t.Fatalf("%s without credentials is not the login form alone: %q", path, body)
		}
		resp, body = statusGet(t, f, path, "Bearer "+statusAdminToken+"x", nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "admin token invalid") || strings.Contains(body, "victim") {
			t.Fatalf("%s with a wrong bearer token: %d %q", path, resp.StatusCode, body)
		}
		resp, body = statusGet(t, f, path, "", &http.Cookie{Name: "fame_admin", Value: "v1.99999999999.AAAA.AAAA"})
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "victim") {
			t.Fatalf("%s with a forged session: %d %q", path, resp.StatusCode, body)
		}
		if n := refusals(t, f, "admin_token") - before; n != 3 {
			t.Fatalf("%s: admin_token refusals moved by %v, want 3", path, n)
		}
	}

	before := refusals(t, f, "admin_token")
	resp, body := statusLogin(t, f, statusAdminToken[:len(statusAdminToken)-1])
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "admin token invalid") || len(resp.Cookies()) != 0 {
		t.Fatalf("login with a wrong token: %d %v %q", resp.StatusCode, resp.Cookies(), body)
	}
	if n := refusals(t, f, "admin_token") - before; n != 1 {
		t.Fatalf("wrong login: admin_token refusals moved by %v, want 1", n)
	}

	resp, _ = statusLogin(t, f, statusAdminToken)
	ck := sessionCookie(t, resp)
	if resp.StatusCode != http.StatusSeeOther || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode ||
		strings.Contains(ck.Value, statusAdminToken) || strings.Contains(resp.Header.Get("Location"), statusAdminToken) {
		t.Fatalf("login: %d %+v %q", resp.StatusCode, ck, resp.Header.Get("Location"))
	}
	if resp, body := statusGet(t, f, "/admin/", "", ck); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-replica="victim"`) {
		t.Fatalf("page with the session: %d %q", resp.StatusCode, body)
	}
	// The session opens the read-only page only: the other admin endpoints want the bearer token.
	if resp, _ := statusGet(t, f, "/stats", "", ck); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/stats with the page's session: %d", resp.StatusCode)
	}

	f.restart() // same token: the session is still good
	if resp, _ := statusGet(t, f, "/admin/status.json", "", ck); resp.StatusCode != http.StatusOK {
		t.Fatalf("session after a restart with the same token: %d", resp.StatusCode)
	}
	f.env["FAME_ADMIN_TOKEN"] = statusAdminToken + "-rotated"
	f.restart()
	before = refusals(t, f, "admin_token")
	for _, path := range []string{"/admin/", "/admin/status.json"} {
		resp, body := statusGet(t, f, path, "", ck)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "log in again") || strings.Contains(body, "victim") {
			t.Fatalf("%s with a session of the old token: %d %q", path, resp.StatusCode, body)
		}
	}
	if n := refusals(t, f, "admin_token") - before; n != 2 {
		t.Fatalf("old session: admin_token refusals moved by %v, want 2", n)
	}
	waitUntil(t, 10e9, "the victim re-attached", func() bool {
		_, body := statusGet(t, f, "/admin/status.json", "Bearer "+f.env["FAME_ADMIN_TOKEN"], nil)
		return strings.Contains(body, `"math@*.fame.fabric"`)
	})
	victimServes(t, f, nil)
}

// TestAttackStatusPageXSS: system ids reach the status page from the attacker (the id in the
// attach URL and in NodeAttach, recorded with their refusals). The page and its JSON carry
// them escaped; the page has no script of its own, so any <script in it would be injected.
func TestAttackStatusPageXSS(t *testing.T) {
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": statusAdminToken})
	f.startReplica("victim", "fame.fabric", nil, nil)
	const urlID = `<script>alert("url")</script>`
	const attachID = `<img src=x onerror=alert(1)>`
	const originID = `"><svg onload=alert(2)>`

	// A plain GET with an invalid origin: refused (404) and recorded with the URL's id.
	resp, _ := statusGet(t, f, "/fame/v1/attach/ws/bogus/"+url.PathEscape(originID), "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("attach with a bad origin: %d", resp.StatusCode)
	}
	// A WebSocket attach whose URL and NodeAttach carry markup: INVALID_SYSTEM_ID.
	before := f.refusals(t, "system_id_invalid")
	m := dialRaw(t, f, url.PathEscape(urlID), nil)
	ack := m.attachAck(func(na *envelope.NodeAttach) { na.SystemID = attachID })
	if ack.OK || ack.Code != "INVALID_SYSTEM_ID" {
		t.Fatalf("attach: %+v", ack)
	}
	m.expectClosed(websocket.StatusPolicyViolation, "INVALID_SYSTEM_ID")
	if n := f.refusals(t, "system_id_invalid") - before; n != 1 {
		t.Fatalf("system_id_invalid moved by %v, want 1", n)
	}

	_, body := statusGet(t, f, "/admin/", "Bearer "+statusAdminToken, nil)
	for _, want := range []string{`&lt;script&gt;alert(&#34;url&#34;)&lt;/script&gt;`, `&#34;&gt;&lt;svg onload=alert(2)&gt;`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks the escaped payload %s", want)
		}
	}
	for _, bad := range []string{"<script", "<img", "<svg", `"><svg`} {
		if strings.Contains(body, bad) {
			t.Errorf("page carries %q unescaped", bad)
		}
	}
	_, js := statusGet(t, f, "/admin/status.json", "Bearer "+statusAdminToken, nil)
	if !strings.Contains(js, `\u003cscript\u003ealert`) || strings.Contains(js, "<script") || strings.Contains(js, "<svg") {
		t.Errorf("status.json does not escape the payloads: %s", js)
	}
	victimServes(t, f, nil)
}
