package sentinel

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

const statusToken = "status-admin-token-0123456789abcdef"

// TestStatusRefusalRing: newest first, bounded, a repeat bumps the count, long fields are cut
// on a rune boundary, a nil ring records nothing.
func TestStatusRefusalRing(t *testing.T) {
	var nilRing *refusalRing
	nilRing.add("x", "p", "r", "why")
	if got, n := nilRing.snapshot(); got != nil || n != 0 {
		t.Fatalf("nil ring: %v %d", got, n)
	}
	r := &refusalRing{}
	for i := 0; i < recentRefusals+10; i++ {
		r.add("code", fmt.Sprintf("peer%d", i), "1.2.3.4:5", "reason")
	}
	r.add("code", "last", "1.2.3.4:5", "reason")
	r.add("code", "last", "1.2.3.4:5", "reason")
	got, total := r.snapshot()
	if len(got) != recentRefusals || total != recentRefusals+12 {
		t.Fatalf("kept %d, total %d", len(got), total)
	}
	if got[0].Peer != "last" || got[0].Count != 2 || got[1].Peer != fmt.Sprintf("peer%d", recentRefusals+9) {
		t.Fatalf("newest first with the repeat counted: %+v %+v", got[0], got[1])
	}
	if got[len(got)-1].Peer != "peer11" {
		t.Fatalf("oldest kept: %+v", got[len(got)-1])
	}
	long := strings.Repeat("é", maxRefusalField) // 2 bytes each
	r.add("code", long, "", long)
	got, _ = r.snapshot()
	if p := got[0].Peer; len(p) > maxRefusalField+len("…") || !strings.HasSuffix(p, "…") || !strings.HasPrefix(long, strings.TrimSuffix(p, "…")) {
		t.Fatalf("clipped peer %q (%d bytes)", p, len(p))
	}
}

// TestStatusSession: the session value opens the page only under the token it was made
// with, until it expires, and not when tampered with.
func TestStatusSession(t *testing.T) {
	s := fakeWiredSentinel(t, map[string]string{"FAME_ADMIN_TOKEN": statusToken})
	g := newAdminGate(s)
	v := g.issue()
	if !g.sessionOK(v) {
		t.Fatal("fresh session refused")
	}
	if strings.Contains(v, statusToken) {
		t.Fatal("the session value carries the token")
	}
	other := newAdminGate(fakeWiredSentinel(t, map[string]string{"FAME_ADMIN_TOKEN": statusToken + "-rotated"}))
	if other.sessionOK(v) {
		t.Fatal("a session made under the old token is accepted under the new one")
	}
	same := newAdminGate(fakeWiredSentinel(t, map[string]string{"FAME_ADMIN_TOKEN": statusToken}))
	if !same.sessionOK(v) {
		t.Fatal("a session is refused by another sentinel with the same token")
	}
	parts := strings.Split(v, ".")
	for _, bad := range []string{"", "v1", v + "x", strings.Replace(v, parts[1], "9999999999", 1),
		"v2." + strings.Join(parts[1:], "."), parts[0] + "." + parts[1] + "." + parts[2] + ".", strings.Repeat("a", 300)} {
		if g.sessionOK(bad) {
			t.Fatalf("tampered session %q accepted", bad)
		}
	}
	g.now = func() time.Time { return time.Now().Add(adminSessionTTL + time.Minute) }
	if g.sessionOK(v) {
		t.Fatal("expired session accepted")
	}
}

// statusFixture is a sentinel with two replicas of math@*.fame.fabric, a client with a pinned
// session, and an attacker-chosen string in the refusal ring.
func statusFixture(t *testing.T, token string) (*Sentinel, http.Handler) {
	t.Helper()
	env := map[string]string{}
	if token != "" {
		env["FAME_ADMIN_TOKEN"] = token
	}
	s := fakeWiredSentinel(t, env)
	add := func(id string) *conn {
		c := newConn(s, nil, "127.0.0.1:4"+fmt.Sprint(len(id)), id, "downstream")
		c.systemID, c.path, c.attachedAt = id, s.path+"/"+id, time.Now()
		c.sid = envelope.SecureDigest(c.path)
		s.routes.attach(c)
		return c
	}
	r1, r2 := add("replica-1"), add("replica-2")
	client := add("client-1")
	client.principal = &Principal{Subject: "<b>client-sub</b>"}
	s.routes.bind(r1, mustAddr(t, "math@*.fame.fabric"))
	s.routes.bind(r2, mustAddr(t, "math@*.fame.fabric"))
	s.sticky.table.Bind(client.sid, "replica-2", 0)
	s.metrics.recent.add("bind_conflict", `<script>alert("id")</script>`, "127.0.0.1:1", `address <img src=x onerror=alert(1)>@fame.fabric is taken`)
	return s, s.Handler()
}

func do(t *testing.T, h http.Handler, method, path string, body url.Values, mod func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func adminTokenRefusals(t *testing.T, s *Sentinel) float64 {
	t.Helper()
	return counterValue(t, s.metrics.limitRefusals.WithLabelValues(limitAdminToken))
}

// TestStatusPageLogin: without credentials the page answers 401 with the login form and none
// of its data; a wrong token 403 (counted); the right one sets a HttpOnly SameSite=Strict
// cookie (Secure over TLS) that opens the page and the JSON, and nothing else.
func TestStatusPageLogin(t *testing.T) {
	s, h := statusFixture(t, statusToken)
	before := adminTokenRefusals(t, s)
	w := do(t, h, "GET", "/admin/", nil, nil)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `action="/admin/login"`) ||
		strings.Contains(w.Body.String(), "replica-1") || strings.Contains(w.Body.String(), "math@") {
		t.Fatalf("no credentials: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Content-Security-Policy") != statusCSP {
		t.Fatalf("CSP %q", w.Header().Get("Content-Security-Policy"))
	}
	if w := do(t, h, "GET", "/admin/status.json", nil, nil); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "replica-1") {
		t.Fatalf("json without credentials: %d %s", w.Code, w.Body)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	if w := do(t, h, "GET", "/admin/status.json", nil, bearer(statusToken+"x")); w.Code != http.StatusForbidden {
		t.Fatalf("json with a wrong token: %d %s", w.Code, w.Body)
	}
	w = do(t, h, "POST", "/admin/login", url.Values{"token": {"wrong-token-wrong-token-wrong"}}, nil)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "admin token invalid") || len(w.Result().Cookies()) != 0 {
		t.Fatalf("login with a wrong token: %d %v %s", w.Code, w.Result().Cookies(), w.Body)
	}
	if n := adminTokenRefusals(t, s) - before; n != 4 {
		t.Fatalf("admin_token refusals counted %v, want 4", n)
	}
	if got, _ := s.metrics.recent.snapshot(); got[0].Code != limitAdminToken {
		t.Fatalf("the refusal ring's newest is %+v", got[0])
	}
	// Another site's form cannot log the operator's browser in (or out).
	for _, hdr := range [][2]string{{"Origin", "http://evil.example"}, {"Origin", "null"}, {"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}} {
		w = do(t, h, "POST", "/admin/login", url.Values{"token": {statusToken}}, func(r *http.Request) { r.Header.Set(hdr[0], hdr[1]) })
		if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
			t.Fatalf("login with %s: %s: %d %v", hdr[0], hdr[1], w.Code, w.Result().Cookies())
		}
	}
	w = do(t, h, "POST", "/admin/login", url.Values{"token": {statusToken}}, func(r *http.Request) {
		r.Header.Set("Origin", "http://"+r.Host)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	})
	cks := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/" || len(cks) != 1 {
		t.Fatalf("login: %d %q %v", w.Code, w.Header().Get("Location"), cks)
	}
	ck := cks[0]
	if ck.Name != adminCookie || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/admin/" ||
		ck.MaxAge <= 0 || strings.Contains(ck.Value, statusToken) {
		t.Fatalf("cookie %+v", ck)
	}
	tlsLogin := do(t, h, "POST", "/admin/login", url.Values{"token": {statusToken}}, func(r *http.Request) { r.TLS = &tls.ConnectionState{} })
	if c := tlsLogin.Result().Cookies(); len(c) != 1 || !c[0].Secure {
		t.Fatalf("cookie over TLS: %+v", c)
	}
	withCookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value}) }
	w = do(t, h, "GET", "/admin/", nil, withCookie)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "math@*.fame.fabric") {
		t.Fatalf("page with the cookie: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/admin/status.json", nil, withCookie); w.Code != http.StatusOK {
		t.Fatalf("json with the cookie: %d", w.Code)
	}
	for _, path := range []string{"/stats", "/metrics"} {
		if w := do(t, h, "GET", path, nil, withCookie); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s with the page's cookie: %d, want 401 (bearer only)", path, w.Code)
		}
	}
	if w := do(t, h, "POST", "/admin/drain", nil, withCookie); w.Code != http.StatusUnauthorized || s.Draining() {
		t.Fatalf("POST /admin/drain with the page's cookie: %d", w.Code)
	}
	// A sentinel whose admin token changed refuses the old session.
	_, h2 := statusFixture(t, statusToken+"-rotated")
	if w := do(t, h2, "GET", "/admin/", nil, withCookie); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "replica-1") {
		t.Fatalf("old cookie after the token changed: %d", w.Code)
	}
	w = do(t, h, "POST", "/admin/logout", nil, withCookie)
	if c := w.Result().Cookies(); w.Code != http.StatusSeeOther || len(c) != 1 || c[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %+v", w.Code, c)
	}
}

// TestStatusPageContent: the page shows the pool with both replicas and the pinned session,
// escapes every peer-chosen string, and its inline style is the one the CSP hash allows.
func TestStatusPageContent(t *testing.T) {
	_, h := statusFixture(t, statusToken)
	w := do(t, h, "GET", "/admin/", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+statusToken) })
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, body)
	}
	for _, want := range []string{`<code class="pool-address">math@*.fame.fabric</code>`, `data-replica="replica-1"`,
		`data-replica="replica-2"`, `data-peer="client-1"`, `<td class="n pinned">1</td>`,
		`&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;`, `&lt;img src=x onerror=alert(1)&gt;`, `&lt;b&gt;client-sub&lt;/b&gt;`,
		`<meta http-equiv="refresh" content="5">`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, bad := range []string{"<script", "<img", "<b>client-sub"} {
		if strings.Contains(body, bad) {
			t.Errorf("page carries %q unescaped", bad)
		}
	}
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no style")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if !strings.Contains(w.Header().Get("Content-Security-Policy"), "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Fatal("the inline style's hash is not the one the CSP allows")
	}
	for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cache-Control"} {
		if w.Header().Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
}

// TestStatusJSONFields: GET /admin/status.json has the documented camelCase fields
// (sentinel/doc.go, "/admin/status.json"), and the data the page shows.
func TestStatusJSONFields(t *testing.T) {
	_, h := statusFixture(t, "")
	w := do(t, h, "GET", "/admin/status.json", nil, nil)
	var top map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &top); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	if strings.Contains(w.Body.String(), "<script") {
		t.Fatal("JSON carries <script unescaped")
	}
	peers, _ := top["peers"].([]any)
	pools, _ := top["pools"].([]any)
	refusals, _ := top["refusals"].([]any)
	if len(peers) != 3 || len(pools) != 1 || len(refusals) != 1 {
		t.Fatalf("peers %v pools %v refusals %v", peers, pools, refusals)
	}
	replicas := pools[0].(map[string]any)["replicas"].([]any)
	objects := []struct {
		name string
		obj  any
		want []string
	}{
		{"top level", top, []string{"id", "path", "routingEpoch", "generatedAt", "securityProfile", "admissionProfile",
			"loadBalancing", "stickiness", "draining", "peers", "pools", "sessions", "channels", "repins",
			"purgedSessions", "purgedChannels", "refusals", "refusalsTotal", "refusalsKept", "open"}},
		{"peers[]", peers[0], []string{"systemId", "path", "remote", "origin", "identity", "profile", "role", "logicals",
			"attachedAt", "queued", "queuedBytes", "pending", "stickySessions", "stickyChannels"}},
		{"pools[]", pools[0], []string{"address", "replicas"}},
		{"pools[].replicas[]", replicas[0], []string{"systemId", "stickySessions", "stickyChannels"}},
		{"refusals[]", refusals[0], []string{"time", "peer", "remote", "code", "reason", "count"}},
	}
	for _, o := range objects {
		m, ok := o.obj.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object: %v", o.name, o.obj)
		}
		var got []string
		for k := range m {
			got = append(got, k)
			if !camel(k) {
				t.Errorf("%s: field %q is not camelCase", o.name, k)
			}
		}
		sort.Strings(got)
		want := slices.Clone(o.want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: fields %v, want %v", o.name, got, want)
		}
	}
	if top["open"] != true || pools[0].(map[string]any)["address"] != "math@*.fame.fabric" ||
		replicas[1].(map[string]any)["stickySessions"] != float64(1) {
		t.Fatalf("data: %s", w.Body)
	}
	for _, p := range peers {
		m := p.(map[string]any)
		want := map[string]string{"client-1": "client", "replica-1": "replica", "replica-2": "replica"}[m["systemId"].(string)]
		if m["role"] != want {
			t.Errorf("%v: role %v, want %s", m["systemId"], m["role"], want)
		}
	}
	// With no admin token the page is open, like /stats, and says so.
	if w := do(t, h, "GET", "/admin/", nil, nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "No admin token is configured") {
		t.Fatalf("open page: %d", w.Code)
	}
}

// BenchmarkRefusalRingAdd: the cost the status page adds to one refusal (a new entry, and the
// repeat of the newest one, as in a flood from one peer).
func BenchmarkRefusalRingAdd(b *testing.B) {
	r := &refusalRing{}
	peers := []string{"peer-a", "peer-b"}
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r.add("queue_full", peers[i&1], "127.0.0.1:1", "reason")
		}
	})
	b.Run("repeat", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r.add("queue_full", "peer-a", "127.0.0.1:1", "reason")
		}
	})
}

// The refusal paths that feed the ring in a flood (a full queue, a drain) allocate nothing for
// it: the texts are constants and the target has its own field.
func TestRefusalRingFloodPathsAllocateNothing(t *testing.T) {
	r := &refusalRing{}
	peer, target := "peer-a", "replica-1"
	if n := testing.AllocsPerRun(100, func() {
		r.addTo(limitQueue, peer, "127.0.0.1:1", target, "envelope refused, sender nacked OVERLOADED")
		r.add("new_call", peer, "127.0.0.1:1", drainRefusalText("call"))
	}); n != 0 {
		t.Fatalf("%v allocations per refusal recorded", n)
	}
	got, _ := r.snapshot()
	if got[1].Target != target {
		t.Fatalf("target not kept: %+v", got[1])
	}
}
