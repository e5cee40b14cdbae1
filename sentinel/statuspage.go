package sentinel

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/stickiness"
)

// The status page (GET /admin/) is a read-only view for operators: peers, pools and their
// replicas with pinned sessions and channels, re-pins and the most recent refusals. It renders
// from the same struct as GET /admin/status.json. It is plain server-rendered HTML: no script
// at all (a <meta refresh> reloads it), one inline style allowed by its hash, and a strict CSP
// (statusCSP), because every system id and address on it is chosen by a peer.
//
// Authentication. Behind the admin token like /stats and /metrics: `Authorization: Bearer`
// works (curl, scrapers). A browser cannot add that header to a navigation, so the page also
// takes the token once through its login form (POST /admin/login) and answers with a session
// cookie: HttpOnly, SameSite=Strict, Path=/admin/, Secure when the request came over TLS, valid
// for adminSessionTTL, holding an expiry and a nonce MACed with a key derived from the admin
// token. The token itself is never put in a URL or a cookie, and a changed token invalidates
// every session. The cookie opens only the two read-only GETs: POST /admin/drain and the other
// admin endpoints still need the bearer token, so a session cookie cannot change anything.
// HTTP Basic would also work from a browser, but it keeps re-sending the token itself with
// every request and cannot be logged out of.

//go:embed statuspage.html
var statusPageHTML string

//go:embed statuspage.css
var statusPageCSS string

// statusRefresh is the page's auto-refresh interval.
const statusRefresh = 5 * time.Second

// adminSessionTTL is how long a login lasts.
const adminSessionTTL = 12 * time.Hour

// adminCookie names the session cookie.
const adminCookie = "fame_admin"

// maxLoginBody bounds the login form: a token and nothing else.
const maxLoginBody = 8 << 10

var (
	statusTemplates = template.Must(template.New("status").Funcs(template.FuncMap{
		"clock": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"age": func(now, t time.Time) string {
			return now.Sub(t).Round(time.Second).String()
		},
	}).Parse(statusPageHTML))
	statusStyleHash = func() string {
		h := sha256.Sum256([]byte(statusPageCSS))
		return base64.StdEncoding.EncodeToString(h[:])
	}()
	// statusCSP allows nothing but the page's own inline style (by hash) and its forms posting
	// to itself: no script, no image, no frame, no connection, no external anything.
	statusCSP = "default-src 'none'; style-src 'sha256-" + statusStyleHash + "'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
)

// statusView is the document of GET /admin/status.json and what GET /admin/ renders. Field
// names are camelCase like /stats (sentinel/doc.go lists them).
type statusView struct {
	ID               string         `json:"id"`
	Path             string         `json:"path"`
	RoutingEpoch     string         `json:"routingEpoch"`
	GeneratedAt      time.Time      `json:"generatedAt"`
	SecurityProfile  string         `json:"securityProfile"`
	AdmissionProfile string         `json:"admissionProfile"`
	LoadBalancing    string         `json:"loadBalancing"`
	Stickiness       bool           `json:"stickiness"`
	Draining         bool           `json:"draining"`
	Peers            []statusPeer   `json:"peers"`
	Pools            []statusPool   `json:"pools"`
	Sessions         int            `json:"sessions"` // session bindings now
	Channels         int            `json:"channels"` // channel bindings now
	Repins           uint64         `json:"repins"`   // sessions moved to another replica since start
	PurgedSessions   uint64         `json:"purgedSessions"`
	PurgedChannels   uint64         `json:"purgedChannels"`
	Refusals         []refusalEntry `json:"refusals"` // the most recent, newest first
	RefusalsTotal    uint64         `json:"refusalsTotal"`
	RefusalsKept     int            `json:"refusalsKept"` // how many the ring keeps
	Open             bool           `json:"open"`         // no admin token is configured
	Refresh          int            `json:"-"`            // seconds, for the page
}

// statusPeer is one attached connection.
type statusPeer struct {
	SystemID    string    `json:"systemId"`
	Path        string    `json:"path"`
	Remote      string    `json:"remote"`
	Origin      string    `json:"origin"`   // downstream or peer
	Identity    string    `json:"identity"` // the admitted subject (token sub, ticket subject); "" under open admission
	Profile     string    `json:"profile"`  // the admission profile that admitted it
	Role        string    `json:"role"`     // replica (pool member), agent (exact binder) or client
	Logicals    []string  `json:"logicals"`
	AttachedAt  time.Time `json:"attachedAt"`
	Queued      int       `json:"queued"` // its send queue, envelopes and bytes
	QueuedBytes int64     `json:"queuedBytes"`
	Pending     int       `json:"pending"` // requests routed to it awaiting their reply
	Sessions    int       `json:"stickySessions"`
	Channels    int       `json:"stickyChannels"`
}

// statusPool is one wildcard pool and its replicas.
type statusPool struct {
	Address  string          `json:"address"` // participant@*.suffix
	Replicas []statusReplica `json:"replicas"`
}

type statusReplica struct {
	SystemID string `json:"systemId"`
	Sessions int    `json:"stickySessions"` // client sessions pinned to it
	Channels int    `json:"stickyChannels"` // channels bound to it
}

// statusPeer is the page's row for c: read-only, from fields fixed at attach and atomics.
func (c *conn) statusPeer() statusPeer {
	p := statusPeer{SystemID: c.systemID, Path: c.path, Remote: c.remote, Origin: c.origin,
		Logicals: c.logicals, AttachedAt: c.attachedAt, Queued: c.q.Len(), QueuedBytes: c.q.Bytes(),
		Pending: c.pendingLen()}
	if c.principal != nil {
		p.Identity = c.principal.Subject
	}
	return p
}

// poolView is one pool as the route table holds it now.
type poolView struct {
	key     string
	members []string // system ids, sorted
}

// poolViews returns every pool with its members, sorted by address.
func (t *routeTable) poolViews() []poolView {
	t.mu.RLock()
	var out []poolView
	for _, bySuffix := range t.pools {
		for _, p := range bySuffix {
			v := poolView{key: p.key, members: make([]string, 0, len(p.members))}
			for _, m := range p.members {
				v.members = append(v.members, m.ident().systemID)
			}
			out = append(out, v)
		}
	}
	t.mu.RUnlock()
	for _, v := range out {
		sort.Strings(v.members)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// exactBinders returns the system ids that hold an exact address.
func (t *routeTable) exactBinders() map[string]bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]bool, len(t.exact))
	for _, c := range t.exact {
		out[c.ident().systemID] = true
	}
	return out
}

// replicaCounts returns the session and channel bindings per replica (empty with stickiness off).
func (r *stickyRouter) replicaCounts() map[string]stickiness.ReplicaCount {
	if r.table == nil {
		return map[string]stickiness.ReplicaCount{}
	}
	return r.table.ReplicaCounts()
}

// status collects the page's data from the components' snapshots.
func (s *Sentinel) status() statusView {
	st := s.sticky.stats()
	counts := s.sticky.replicaCounts()
	refusals, total := s.metrics.recent.snapshot()
	v := statusView{ID: s.id, Path: s.path, RoutingEpoch: s.epoch, GeneratedAt: time.Now().UTC(),
		SecurityProfile: string(s.opts.SecurityProfile), AdmissionProfile: string(s.opts.AdmissionProfile),
		LoadBalancing: string(s.opts.LoadBalancing), Stickiness: s.opts.Stickiness, Draining: s.Draining(),
		Sessions: st.Size, Channels: st.Channels, Repins: st.Repins,
		PurgedSessions: st.PurgedSessions, PurgedChannels: st.PurgedChannels,
		Refusals: refusals, RefusalsTotal: total, RefusalsKept: recentRefusals,
		Open: s.opts.AdminToken == "", Refresh: int(statusRefresh / time.Second)}
	inPool := map[string]bool{}
	for _, p := range s.routes.poolViews() {
		sp := statusPool{Address: p.key, Replicas: make([]statusReplica, 0, len(p.members))}
		for _, id := range p.members {
			inPool[id] = true
			n := counts[id]
			sp.Replicas = append(sp.Replicas, statusReplica{SystemID: id, Sessions: n.Sessions, Channels: n.Channels})
		}
		v.Pools = append(v.Pools, sp)
	}
	binders := s.routes.exactBinders()
	// Only attached peers: their identity fields are written before they enter the route
	// table, whose lock orders those writes before these reads.
	for _, p := range s.routes.attached() {
		c := asConn(p)
		if c == nil {
			continue
		}
		sp := c.statusPeer()
		sp.Profile = string(s.opts.AdmissionProfile)
		n := counts[sp.SystemID]
		sp.Sessions, sp.Channels = n.Sessions, n.Channels
		switch {
		case inPool[sp.SystemID]:
			sp.Role = "replica"
		case binders[sp.SystemID]:
			sp.Role = "agent"
		default:
			sp.Role = "client"
		}
		v.Peers = append(v.Peers, sp)
	}
	sort.Slice(v.Peers, func(i, j int) bool { return v.Peers[i].SystemID < v.Peers[j].SystemID })
	if v.Peers == nil {
		v.Peers = []statusPeer{}
	}
	if v.Pools == nil {
		v.Pools = []statusPool{}
	}
	return v
}

// statusRoutes mounts the status page, its JSON and its login on mux.
func (s *Sentinel) statusRoutes(mux *http.ServeMux) {
	g := newAdminGate(s)
	mux.Handle("GET /admin/{$}", g.guard(false, http.HandlerFunc(s.handleStatusPage)))
	mux.Handle("GET /admin/status.json", g.guard(true, http.HandlerFunc(s.handleStatusJSON)))
	mux.HandleFunc("POST /admin/login", g.login)
	mux.HandleFunc("POST /admin/logout", g.logout)
}

// pageHeaders are set on every answer of the page and its login form.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (s *Sentinel) handleStatusPage(w http.ResponseWriter, _ *http.Request) {
	v := s.status()
	renderPage(w, http.StatusOK, "page", struct {
		statusView
		CSS template.CSS
	}{v, template.CSS(statusPageCSS)})
}

func (s *Sentinel) handleStatusJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w) // escapes <, > and & inside strings
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.status())
}

// renderPage executes a template into a buffer first, so that a failure is a 500, not half a page.
func renderPage(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := statusTemplates.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	pageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// loginPage is the form shown instead of the page (401 without credentials, 403 with wrong ones).
func loginPage(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fame-admin"`)
	}
	renderPage(w, code, "login", struct {
		Message string
		CSS     template.CSS
	}{msg, template.CSS(statusPageCSS)})
}

// adminGate checks the admin token for the status page: a bearer header or the session cookie
// issued by the login form. The key of the cookie's MAC is derived from the token, so the
// sessions end when the token changes.
type adminGate struct {
	s    *Sentinel
	open bool     // no admin token configured: the page is open like /stats
	want [32]byte // sha256 of the token
	key  []byte   // HMAC key of the session cookies
	now  func() time.Time
}

func newAdminGate(s *Sentinel) *adminGate {
	g := &adminGate{s: s, open: s.opts.AdminToken == "", now: time.Now}
	if g.open {
		return g
	}
	g.want = sha256.Sum256([]byte(s.opts.AdminToken))
	m := hmac.New(sha256.New, []byte(s.opts.AdminToken))
	m.Write([]byte("fame-go admin session cookie v1"))
	g.key = m.Sum(nil)
	return g
}

// tokenOK compares a presented token with the admin token in constant time (hashing both
// first makes the time independent of the token's length too).
func (g *adminGate) tokenOK(tok string) bool {
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], g.want[:]) == 1
}

// issue makes a session value: v1.<expiry unix>.<nonce>.<mac>.
func (g *adminGate) issue() string {
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	body := "v1." + strconv.FormatInt(g.now().Add(adminSessionTTL).Unix(), 10) + "." +
		base64.RawURLEncoding.EncodeToString(nonce[:])
	return body + "." + base64.RawURLEncoding.EncodeToString(g.mac(body))
}

func (g *adminGate) mac(body string) []byte {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// sessionOK checks a session value: its MAC under the current key and its expiry.
func (g *adminGate) sessionOK(v string) bool {
	i := strings.LastIndexByte(v, '.')
	if i < 0 || len(v) > 256 {
		return false
	}
	body, sig := v[:i], v[i+1:]
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, g.mac(body)) {
		return false
	}
	parts := strings.Split(body, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	now := g.now()
	return err == nil && now.Unix() < exp && exp <= now.Add(adminSessionTTL).Unix()
}

// check says whether r may see the page; if not, the status code and the reason.
func (g *adminGate) check(r *http.Request) (int, string) {
	if g.open {
		return http.StatusOK, ""
	}
	if a := r.Header.Get("Authorization"); a != "" {
		tok, ok := token.BearerFromHeader(a)
		switch {
		case !ok:
			return http.StatusUnauthorized, "admin token required: Authorization is not a Bearer token"
		case !g.tokenOK(tok):
			return http.StatusForbidden, "admin token invalid"
		}
		return http.StatusOK, ""
	}
	ck, err := r.Cookie(adminCookie)
	if err != nil {
		return http.StatusUnauthorized, "admin token required: log in with the admin token"
	}
	if !g.sessionOK(ck.Value) {
		// Expired, forged, or made under a previous admin token.
		return http.StatusUnauthorized, "admin session expired or invalid: log in again"
	}
	return http.StatusOK, ""
}

// refused counts and logs a refused request under fame_limit_refusals_total{reason="admin_token"}.
func (g *adminGate) refused(r *http.Request, reason string) {
	g.s.limits.refused(limitAdminToken, "", r.RemoteAddr, "admin endpoint refused: "+reason, "path", r.URL.Path)
}

// guard lets a request through with valid credentials; otherwise the page answers with the
// login form (401, or 403 for a wrong token) and the JSON with the reason as text.
func (g *adminGate) guard(api bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, reason := g.check(r)
		if code == http.StatusOK {
			next.ServeHTTP(w, r)
			return
		}
		g.refused(r, reason)
		if api {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fame-admin"`)
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, reason, code)
			return
		}
		loginPage(w, code, reason)
	})
}

// sessionCookie is the cookie the login sets (value "" and MaxAge -1 clear it).
func sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: adminCookie, Value: value, Path: "/admin/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

// login is POST /admin/login: the form's token field, checked like the bearer token. Success
// sets the session cookie and sends the browser back to the page (303, so a reload does not
// re-post the token).
func (g *adminGate) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		g.refused(r, "cross-site login refused")
		loginPage(w, http.StatusForbidden, "cross-site login refused")
		return
	}
	if g.open {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		g.refused(r, "login form unreadable")
		loginPage(w, http.StatusBadRequest, "login form unreadable")
		return
	}
	tok := r.PostForm.Get("token")
	switch {
	case tok == "":
		g.refused(r, "admin token required")
		loginPage(w, http.StatusUnauthorized, "admin token required")
		return
	case !g.tokenOK(tok):
		g.refused(r, "admin token invalid")
		loginPage(w, http.StatusForbidden, "admin token invalid")
		return
	}
	http.SetCookie(w, sessionCookie(r, g.issue(), int(adminSessionTTL/time.Second)))
	pageHeaders(w)
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

// logout is POST /admin/logout: it clears the cookie (the session value itself stays valid
// until it expires or the token changes; nothing is kept server-side to revoke).
func (g *adminGate) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		g.refused(r, "cross-site logout refused")
		loginPage(w, http.StatusForbidden, "cross-site logout refused")
		return
	}
	http.SetCookie(w, sessionCookie(r, "", -1))
	pageHeaders(w)
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

// sameOrigin refuses a form post that a browser marks as coming from another site (login CSRF:
// another site logging the operator's browser in or out). Browsers say where a request comes
// from in Sec-Fetch-Site, which a page cannot forge; older ones send Origin on every POST. A
// client that sends neither, such as curl, is not a browser being used by another site.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
