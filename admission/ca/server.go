package ca

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fame-go/fame/admission/internal/httpx"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
)

// Paths served by the Server.
const (
	SignPath        = "/fame/v1/ca/sign"
	HealthPath      = "/fame/v1/ca/health"
	TrustBundlePath = "/.well-known/naylence/trust-bundle.json"
)

// Server is the CA HTTP service; it is an http.Handler.
type Server struct {
	ca     *Authority
	auth   *token.Verifier // nil = unauthenticated (dev only)
	log    *slog.Logger
	bundle []byte
	etag   string
	mux    *http.ServeMux
	m      *httpx.Outcomes
}

// NewServer serves a. auth verifies CA grants (issuer = welcome, audience
// "ca"); nil is accepted only with allowUnauthenticated.
func NewServer(a *Authority, auth *token.Verifier, allowUnauthenticated bool, log *slog.Logger) (*Server, error) {
	if auth == nil && !allowUnauthenticated {
		return nil, errors.New("ca: a CA grant verifier is required (or allow unauthenticated)")
	}
	if log == nil {
		log = slog.Default()
	}
	b, etag, err := a.trustBundleJSON(a.Now())
	if err != nil {
		return nil, err
	}
	s := &Server{ca: a, auth: auth, log: log, bundle: b, etag: etag, mux: http.NewServeMux(), m: newMetrics()}
	s.mux.HandleFunc("POST "+SignPath, s.sign)
	s.mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy", "service": "ca-signing"})
	})
	s.mux.HandleFunc("GET "+TrustBundlePath, s.trustBundle)
	s.mux.Handle("GET "+MetricsPath, s.m.Handler())
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) trustBundle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", s.etag)
	w.Header().Set("Cache-Control", "public, max-age=3600, stale-while-revalidate=86400")
	if r.Header.Get("If-None-Match") == s.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.bundle)
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) {
	var grant *ticket.Claims
	if s.auth != nil {
		grant = &ticket.Claims{}
		if ref := s.auth.Authenticate(w, r, grant, 10*time.Second); ref != nil {
			if ref.Err != nil {
				s.log.Debug("ca: grant refused", "err", ref.Err)
			}
			s.refuse(w, r, nil, "", http.StatusUnauthorized, ref.Code, ref.Detail)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSignRequest))
	if err != nil {
		s.refuse(w, r, grant, "", http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		return
	}
	req, csr, err := DecodeSignRequest(body)
	if err != nil {
		s.refuse(w, r, grant, "", http.StatusBadRequest, "invalid_request", "Invalid CSR: "+err.Error())
		return
	}
	nr, err := authorize(req, grant)
	if err == nil {
		err = checkCSR(csr, nr, s.ca.TrustDomain)
	}
	if err != nil {
		code := "not_allowed"
		var ne *notAllowed
		if errors.As(err, &ne) {
			code = ne.code
		}
		s.refuse(w, r, grant, req.RequesterID, http.StatusForbidden, code, err.Error())
		return
	}
	issued, err := s.ca.IssueNode(csr, nr)
	if err != nil {
		if errors.Is(err, ErrBadCSR) {
			s.refuse(w, r, grant, req.RequesterID, http.StatusBadRequest, "invalid_csr", "Invalid CSR: "+err.Error())
			return
		}
		s.log.Error("ca: signing failed", "err", err)
		s.m.Refused.WithLabelValues("internal").Inc()
		httpx.WriteError(w, http.StatusInternalServerError, "internal", "Certificate signing failed")
		return
	}
	s.m.Granted.Inc()
	client := ""
	if grant != nil {
		client = grant.ClientID
	}
	s.log.Info("ca: issued node certificate", "requester", nr.RequesterID, "client", client, "sid", issued.SID,
		"logicals", nr.Logicals, "not_after", issued.Leaf.NotAfter)
	httpx.WriteJSON(w, http.StatusOK, SignResponse{
		CertificatePEM:      string(issued.LeafPEM()),
		CertificateChainPEM: string(issued.ChainPEM()),
		ExpiresAt:           issued.Leaf.NotAfter.UTC().Format("2006-01-02T15:04:05-07:00"),
	})
}

// refuse answers a refusal: the JSON error body, a log line naming the
// requester and the grant's client, and the counter by reason.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, grant *ticket.Claims, requester string, status int, code, detail string) {
	s.m.Refused.WithLabelValues(code).Inc()
	lvl := slog.LevelInfo
	attrs := []any{"reason", code, "requester", requester, "remote", r.RemoteAddr, "detail", detail}
	if grant != nil {
		attrs = append(attrs, "grant_system_id", grant.SystemID, "client", grant.ClientID)
	}
	if status == http.StatusForbidden {
		lvl = slog.LevelWarn // a valid grant used for more than it grants
	}
	s.log.Log(r.Context(), lvl, "ca: sign refused", attrs...)
	httpx.WriteError(w, status, code, detail)
}

// notAllowed is a request beyond its grant; code is the stable reason.
type notAllowed struct {
	code string
	msg  string
}

func (e *notAllowed) Error() string { return e.msg }

func deny(code, format string, args ...any) error {
	return &notAllowed{code: code, msg: fmt.Sprintf(format, args...)}
}

// Refusal codes (HTTP 403) of a sign request beyond its CA grant.
const (
	CodeRequesterNotGranted = "requester_not_granted"
	CodePathNotGranted      = "path_not_granted"
	CodeLogicalNotGranted   = "logical_not_granted"
	CodeCSRNotGranted       = "csr_not_granted"
)

// authorize binds the request to the grant; body fields left out are taken
// from it. Without a grant (dev mode) the body is trusted as the reference
// does.
func authorize(req *SignRequest, grant *ticket.Claims) (NodeRequest, error) {
	nr := NodeRequest{RequesterID: req.RequesterID, PhysicalPath: req.PhysicalPath, Logicals: req.Logicals}
	if grant == nil {
		if nr.PhysicalPath == "" {
			nr.PhysicalPath = "/unknown/" + nr.RequesterID
		}
		return nr, nil
	}
	// The grant itself must be self-consistent: its path ends in its id.
	if grant.SystemID == "" || !strings.HasSuffix(grant.AssignedPath, "/"+grant.SystemID) {
		return nr, deny(CodePathNotGranted, "the CA grant's assigned path %q is not for its system id %q", grant.AssignedPath, grant.SystemID)
	}
	if req.RequesterID != grant.SystemID {
		return nr, deny(CodeRequesterNotGranted, "the CA grant is for system id %q, not %q", grant.SystemID, req.RequesterID)
	}
	switch {
	case nr.PhysicalPath == "":
		nr.PhysicalPath = grant.AssignedPath
	case nr.PhysicalPath != grant.AssignedPath:
		return nr, deny(CodePathNotGranted, "the CA grant is for path %q, not %q", grant.AssignedPath, nr.PhysicalPath)
	}
	if nr.Logicals == nil {
		nr.Logicals = grant.AcceptedLogicals
	}
	for _, l := range nr.Logicals {
		if !slices.Contains(grant.AcceptedLogicals, l) {
			return nr, deny(CodeLogicalNotGranted, "the CA grant does not allow logical %q (granted: %q)", l, grant.AcceptedLogicals)
		}
	}
	return nr, nil
}
