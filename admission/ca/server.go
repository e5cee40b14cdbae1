package ca

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
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
	s := &Server{ca: a, auth: auth, log: log, bundle: b, etag: etag, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST "+SignPath, s.sign)
	s.mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy", "service": "ca-signing"})
	})
	s.mux.HandleFunc("GET "+TrustBundlePath, s.trustBundle)
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
		raw, ok := token.BearerFromHeader(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			httpx.WriteError(w, http.StatusUnauthorized, "missing_token", "Authentication failed: no bearer token")
			return
		}
		grant = &ticket.Claims{}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		err := s.auth.VerifyInto(ctx, raw, grant)
		cancel()
		if err != nil {
			reason := token.ReasonOf(err)
			s.log.Info("ca: grant refused", "reason", reason, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			httpx.WriteError(w, http.StatusUnauthorized, string(reason), "Authentication failed: "+string(reason))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSignRequest))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		return
	}
	req, csr, err := DecodeSignRequest(body)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "invalid_request", "Invalid CSR: "+err.Error())
		return
	}
	nr, err := authorize(req, grant)
	if err != nil {
		httpx.WriteError(w, http.StatusForbidden, "not_allowed", err.Error())
		return
	}
	issued, err := s.ca.IssueNode(csr, nr)
	if err != nil {
		if errors.Is(err, ErrBadCSR) {
			httpx.WriteError(w, http.StatusBadRequest, "invalid_csr", "Invalid CSR: "+err.Error())
			return
		}
		s.log.Error("ca: signing failed", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal", "Certificate signing failed")
		return
	}
	s.log.Info("ca: issued node certificate", "requester", nr.RequesterID, "sid", issued.SID, "not_after", issued.Leaf.NotAfter)
	httpx.WriteJSON(w, http.StatusOK, SignResponse{
		CertificatePEM:      string(issued.LeafPEM()),
		CertificateChainPEM: string(issued.ChainPEM()),
		ExpiresAt:           issued.Leaf.NotAfter.UTC().Format("2006-01-02T15:04:05-07:00"),
	})
}

var (
	errRequester = errors.New("the CA grant is for another system id")
	errPath      = errors.New("the CA grant does not allow this physical path")
	errLogical   = errors.New("the CA grant does not allow this logical")
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
	if req.RequesterID != grant.SystemID {
		return nr, errRequester
	}
	switch {
	case nr.PhysicalPath == "":
		nr.PhysicalPath = grant.AssignedPath
	case nr.PhysicalPath != grant.AssignedPath:
		return nr, errPath
	}
	if nr.Logicals == nil {
		nr.Logicals = grant.AcceptedLogicals
	}
	for _, l := range nr.Logicals {
		if !slices.Contains(grant.AcceptedLogicals, l) {
			return nr, errLogical
		}
	}
	return nr, nil
}
