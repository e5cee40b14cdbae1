package welcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/fame-go/fame/admission/internal/httpx"
	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/ticket"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
)

// Service is the welcome service. It is an http.Handler.
type Service struct {
	cfg    Config
	key    *jose.SigningKey
	issuer *ticket.Issuer
	auth   *token.Verifier // nil when anonymous
	jwks   []byte
	mux    *http.ServeMux
}

// New builds the service from cfg.
func New(cfg Config) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	key, err := jose.KeyOrFile(cfg.Key, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("welcome: signing key: %w", err)
	}
	auth := cfg.Verifier
	if auth == nil && !cfg.AllowAnonymous {
		if cfg.Auth.Issuer == "" {
			return nil, errNoAuth
		}
		v, err := cfg.Auth.NewJWKSVerifier(token.JWKSOptions{}, 0)
		if err != nil {
			return nil, fmt.Errorf("welcome: bearer verifier: %w", err)
		}
		auth = v
	}
	jwks, err := json.Marshal(jose.SetOf(key))
	if err != nil {
		return nil, fmt.Errorf("welcome: encode JWKS: %w", err)
	}
	s := &Service{
		cfg: cfg, key: key, auth: auth, jwks: jwks,
		issuer: &ticket.Issuer{Key: key, Issuer: cfg.Issuer, TTL: cfg.TicketTTL, Now: cfg.Now},
		mux:    http.NewServeMux(),
	}
	s.mux.HandleFunc("POST "+HelloPath, s.hello)
	s.mux.HandleFunc("GET "+JWKSPath, s.serveJWKS)
	s.mux.HandleFunc("GET "+JWKSPathV1, s.serveJWKS)
	return s, nil
}

// Key is the ticket signing key (its public half is in the JWKS).
func (s *Service) Key() *jose.SigningKey { return s.key }

func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Service) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.jwks)
}

// helloError is a refusal with its HTTP status and stable code.
type helloError struct {
	status int
	code   string
	err    error
}

func (e *helloError) Error() string { return e.err.Error() }

func refuse(status int, code, format string, args ...any) *helloError {
	return &helloError{status: status, code: code, err: fmt.Errorf(format, args...)}
}

func (s *Service) hello(w http.ResponseWriter, r *http.Request) {
	if s.auth != nil {
		raw, ok := token.BearerFromHeader(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			httpx.WriteError(w, http.StatusUnauthorized, "missing_token", "Authentication failed: no bearer token")
			return
		}
		if _, err := s.auth.Verify(r.Context(), raw); err != nil {
			s.cfg.Logger.Info("welcome: bearer refused", "reason", token.ReasonOf(err), "err", err)
			status := http.StatusUnauthorized
			if token.ReasonOf(err) == token.ReasonKeysUnavailable {
				status = http.StatusServiceUnavailable
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			httpx.WriteError(w, status, string(token.ReasonOf(err)), "Authentication failed: "+string(token.ReasonOf(err)))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, envelope.MaxMessageSize))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		return
	}
	out, err := s.Welcome(body)
	if err != nil {
		var he *helloError
		if !errors.As(err, &he) {
			s.cfg.Logger.Error("welcome: hello failed", "err", err)
			httpx.WriteError(w, http.StatusInternalServerError, "internal", "welcome failed")
			return
		}
		httpx.WriteError(w, he.status, he.code, he.err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(out)
}

// Welcome turns a NodeHello envelope into the NodeWelcome envelope bytes.
// The caller has already authenticated the request.
func (s *Service) Welcome(body []byte) ([]byte, error) {
	env, err := envelope.Decode(body)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "bad_envelope", "invalid envelope: %v", err)
	}
	if ft := env.FrameType(); ft != "NodeHello" {
		return nil, refuse(http.StatusUnprocessableEntity, "bad_frame", "frame type %q, want NodeHello", ft)
	}
	f, err := env.DecodeFrame()
	if err != nil {
		return nil, refuse(http.StatusUnprocessableEntity, "bad_frame", "invalid NodeHello: %v", err)
	}
	hello, ok := f.(*envelope.NodeHello)
	if !ok {
		return nil, refuse(http.StatusUnprocessableEntity, "bad_frame", "frame is %T, want NodeHello", f)
	}
	welcome, err := s.place(hello)
	if err != nil {
		return nil, err
	}
	out, err := envelope.New(welcome)
	if err != nil {
		return nil, fmt.Errorf("welcome: build envelope: %w", err)
	}
	out.TraceID = envelope.NewID()
	return out.Marshal()
}

func (s *Service) place(h *envelope.NodeHello) (*envelope.NodeWelcome, error) {
	sid := h.SystemID
	if sid == "" {
		sid = envelope.NewID()
	}
	if !validSystemID(sid) {
		return nil, refuse(http.StatusUnprocessableEntity, "bad_system_id", "invalid systemId %q", sid)
	}
	for _, l := range h.Logicals {
		if !validLogical(l) {
			return nil, refuse(http.StatusUnprocessableEntity, "bad_logical", "invalid logical %q", l)
		}
	}
	if len(h.SupportedTransports) > 0 && !slices.Contains(h.SupportedTransports, "websocket") {
		return nil, refuse(http.StatusUnprocessableEntity, "no_transport", "no supported transport (have %q, offer websocket)", h.SupportedTransports)
	}
	accepted, rejected := splitLogicals(h.Logicals, s.cfg.AllowedLogicals)
	now := s.cfg.Now()
	meta, _ := json.Marshal(map[string]string{"instance_id": h.InstanceID})
	w := &envelope.NodeWelcome{
		SystemID: sid, InstanceID: h.InstanceID,
		AcceptedCapabilities: h.Capabilities, AcceptedLogicals: accepted, RejectedLogicals: rejected,
		ExpiresAt: envelope.FormatTime(now.Add(s.cfg.WelcomeTTL)), Metadata: meta,
	}
	p := ticket.Placement{SystemID: sid, InstanceID: h.InstanceID, AcceptedLogicals: accepted}
	if sid == s.cfg.TargetSystemID {
		// The sentinel itself: it is the root, nothing to attach to.
		w.AssignedPath = "/" + sid
		p.AssignedPath = w.AssignedPath
	} else {
		w.TargetSystemID, w.TargetPhysicalPath = s.cfg.TargetSystemID, s.cfg.TargetPhysicalPath
		w.AssignedPath = s.cfg.TargetPhysicalPath + "/" + sid
		p.ParentPath, p.AssignedPath = s.cfg.TargetPhysicalPath, w.AssignedPath
		tk, _, err := s.issuer.IssueAttach(p)
		if err != nil {
			return nil, err
		}
		g, err := attachGrant(s.cfg.AttachURL, tk)
		if err != nil {
			return nil, fmt.Errorf("welcome: encode attach grant: %w", err)
		}
		w.ConnectionGrants = append(w.ConnectionGrants, g)
	}
	if s.cfg.CAServiceURL != "" {
		tk, _, err := s.issuer.IssueCA(p)
		if err != nil {
			return nil, err
		}
		g, err := caGrant(s.cfg.CAServiceURL, tk)
		if err != nil {
			return nil, fmt.Errorf("welcome: encode CA grant: %w", err)
		}
		w.ConnectionGrants = append(w.ConnectionGrants, g)
	}
	s.cfg.Logger.Info("welcome: placed node", "system_id", sid, "assigned_path", w.AssignedPath,
		"accepted", accepted, "rejected", rejected)
	return w, nil
}
