package sentinel

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/fame-go/fame/admission/token"
)

// admin guards an operator endpoint with the admin token (FAME_ADMIN_TOKEN, admin.token). With
// no token configured the endpoint stays open, as before. /stats lists every node's system id,
// path and remote address; /metrics names frame types, refusal reasons and counts that tell an
// attacker what the sentinel carries and which limits it hits; /debug/pprof can run a CPU
// profile and dump heap contents. All three are admin endpoints. /healthz, /readyz and
// /fame/v1/attach/health stay open for orchestrators and load balancers.
func (s *Sentinel) admin(next http.Handler) http.Handler {
	if s.opts.AdminToken == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.opts.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := ""
		a := r.Header.Get("Authorization")
		tok, isBearer := token.BearerFromHeader(a)
		switch {
		case a == "":
			reason = "admin token required: send Authorization: Bearer <token>"
		case !isBearer:
			reason = "admin token required: Authorization is not a Bearer token"
		default:
			// Hashing both sides first makes the comparison constant-time in the token's
			// length too, which subtle.ConstantTimeCompare alone is not.
			got := sha256.Sum256([]byte(tok))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				reason = "admin token invalid"
			}
		}
		if reason != "" {
			s.limits.refused(limitAdminToken, "", r.RemoteAddr, "admin endpoint refused: "+reason, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="fame-admin"`)
			http.Error(w, reason, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
