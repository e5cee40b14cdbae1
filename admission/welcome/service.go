package welcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

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
	policy *policy         // nil when anonymous
	jwks   []byte
	mux    *http.ServeMux
	m      *httpx.Outcomes
	placer *placer // nil: one sentinel (cfg.Target*)
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
	var pol *policy
	switch {
	case auth != nil && len(cfg.Grants) == 0:
		return nil, errNoGrants
	case auth != nil && cfg.AllowedLogicals != nil:
		return nil, errAllowedWithGrants
	case auth == nil && len(cfg.Grants) > 0:
		return nil, errAnonymousGrants
	case auth != nil:
		if pol, err = validateGrants(cfg.Grants, cfg.TargetSystemID, targetIDs(cfg.Targets)...); err != nil {
			return nil, err
		}
	default:
		cfg.Logger.Warn("welcome: anonymous hellos: any caller may name any system id (development only)",
			"allowed_logicals", cfg.AllowedLogicals)
	}
	jwks, err := json.Marshal(jose.SetOf(key))
	if err != nil {
		return nil, fmt.Errorf("welcome: encode JWKS: %w", err)
	}
	s := &Service{
		cfg: cfg, key: key, auth: auth, policy: pol, jwks: jwks, m: newMetrics(),
		issuer: &ticket.Issuer{Key: key, Issuer: cfg.Issuer, TTL: cfg.TicketTTL, Now: cfg.Now},
		mux:    http.NewServeMux(),
	}
	if len(cfg.Targets) > 0 {
		s.placer = newPlacer(cfg.Targets, cfg.home, cfg.ReadyClient, cfg.Now)
	}
	s.mux.HandleFunc("POST "+HelloPath, s.hello)
	s.mux.HandleFunc("GET "+JWKSPath, s.serveJWKS)
	s.mux.HandleFunc("GET "+JWKSPathV1, s.serveJWKS)
	s.mux.Handle("GET "+MetricsPath, s.m.Handler())
	return s, nil
}

// isTarget reports whether sid is a sentinel the service places nodes on (the sentinel
// itself saying hello gets the root placement).
func (s *Service) isTarget(sid string) bool {
	if sid == s.cfg.TargetSystemID {
		return true
	}
	for _, t := range s.cfg.Targets {
		if sid == t.SystemID {
			return true
		}
	}
	return false
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
	status   int
	code     string
	err      error
	systemID string // the id asked for, for the log line
}

func (e *helloError) Error() string { return e.err.Error() }

func refuse(status int, code, format string, args ...any) *helloError {
	return &helloError{status: status, code: code, err: fmt.Errorf(format, args...)}
}

func (e *helloError) with(systemID string) *helloError { e.systemID = systemID; return e }

func (s *Service) hello(w http.ResponseWriter, r *http.Request) {
	subject := ""
	if s.auth != nil {
		var claims token.Claims
		if ref := s.auth.Authenticate(w, r, &claims, 0); ref != nil {
			status := http.StatusUnauthorized
			if ref.Code == string(token.ReasonKeysUnavailable) {
				// The token may be fine; the issuer's keys could not be fetched.
				status = http.StatusServiceUnavailable
			}
			if ref.Err != nil {
				s.cfg.Logger.Debug("welcome: bearer refused", "err", ref.Err)
			}
			s.refused(w, r, "", "", &helloError{status: status, code: ref.Code, err: errors.New(ref.Detail)})
			return
		}
		subject = claims.Subject
		if subject == "" {
			subject = claims.ClientID
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, envelope.MaxMessageSize))
	if err != nil {
		s.refused(w, r, subject, "", &helloError{status: http.StatusRequestEntityTooLarge, code: "too_large", err: errors.New("request body too large")})
		return
	}
	out, err := s.Welcome(subject, body)
	if err != nil {
		var he *helloError
		if !errors.As(err, &he) {
			s.cfg.Logger.Error("welcome: hello failed", "err", err)
			s.m.Refused.WithLabelValues("internal").Inc()
			httpx.WriteError(w, http.StatusInternalServerError, "internal", "welcome failed")
			return
		}
		s.refused(w, r, subject, he.systemID, he)
		return
	}
	s.m.Granted.Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(out)
}

// refused answers a refusal: the JSON error body, a log line naming the
// caller, and the counter by reason.
func (s *Service) refused(w http.ResponseWriter, r *http.Request, subject, systemID string, he *helloError) {
	s.m.Refused.WithLabelValues(he.code).Inc()
	lvl := slog.LevelInfo
	if he.status == http.StatusForbidden {
		// A valid client asking beyond its grant is an attack or a
		// misconfiguration; either way someone should look.
		lvl = slog.LevelWarn
	}
	s.cfg.Logger.Log(r.Context(), lvl, "welcome: hello refused", "reason", he.code, "client", subject,
		"system_id", systemID, "remote", r.RemoteAddr, "detail", he.err.Error())
	httpx.WriteError(w, he.status, he.code, he.err.Error())
}

// Welcome turns a NodeHello envelope into the NodeWelcome envelope bytes.
// The caller has already authenticated the request; subject is its token's
// subject ("" for an anonymous hello), whose grant bounds the placement.
func (s *Service) Welcome(subject string, body []byte) ([]byte, error) {
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
	welcome, err := s.place(subject, hello)
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

// Refusal codes of a hello outside the caller's grant (HTTP 403).
const (
	CodeNoGrant            = "no_grant"
	CodeSystemIDNotGranted = "system_id_not_granted"
	CodeLogicalNotGranted  = "logical_not_granted"
)

func (s *Service) place(subject string, h *envelope.NodeHello) (*envelope.NodeWelcome, error) {
	var g *clientGrant
	if s.policy != nil {
		if g = s.policy.bySub[subject]; g == nil {
			return nil, refuse(http.StatusForbidden, CodeNoGrant, "client %q has no admission grant", subject)
		}
	}
	sid := h.SystemID
	if sid == "" {
		if g != nil {
			sid = s.policy.newID(g)
		} else {
			sid = envelope.NewID()
		}
	}
	if !validSystemID(sid) {
		return nil, refuse(http.StatusUnprocessableEntity, "bad_system_id", "invalid systemId %q", sid).with(sid)
	}
	for _, l := range h.Logicals {
		if !validLogical(l) {
			return nil, refuse(http.StatusUnprocessableEntity, "bad_logical", "invalid logical %q", l).with(sid)
		}
	}
	if len(h.SupportedTransports) > 0 && !slices.Contains(h.SupportedTransports, "websocket") {
		return nil, refuse(http.StatusUnprocessableEntity, "no_transport", "no supported transport (have %q, offer websocket)", h.SupportedTransports).with(sid)
	}
	var accepted, rejected []string
	if g != nil {
		if !s.policy.allowsID(g, sid) {
			return nil, refuse(http.StatusForbidden, CodeSystemIDNotGranted,
				"client %q may not attach as system id %q (granted: %s)", subject, sid, strings.Join(g.SystemIDs, ",")).with(sid)
		}
		// All or nothing: a node that silently lost a logical would attach
		// and then fail its binds; a refusal names the problem at once.
		for _, l := range h.Logicals {
			if !envelope.LogicalAllowed(g.Logicals, l) {
				return nil, refuse(http.StatusForbidden, CodeLogicalNotGranted,
					"client %q may not request logical %q (granted: %q)", subject, l, g.Logicals).with(sid)
			}
		}
		accepted = slices.Clone(h.Logicals)
	} else {
		accepted, rejected = splitLogicals(h.Logicals, s.cfg.AllowedLogicals)
	}
	now := s.cfg.Now()
	meta, _ := json.Marshal(map[string]string{"instance_id": h.InstanceID})
	w := &envelope.NodeWelcome{
		SystemID: sid, InstanceID: h.InstanceID,
		AcceptedCapabilities: h.Capabilities, AcceptedLogicals: accepted, RejectedLogicals: rejected,
		ExpiresAt: envelope.FormatTime(now.Add(s.cfg.WelcomeTTL)), Metadata: meta,
	}
	p := ticket.Placement{SystemID: sid, InstanceID: h.InstanceID, AcceptedLogicals: accepted, ClientID: subject}
	target := Target{SystemID: s.cfg.TargetSystemID, PhysicalPath: s.cfg.TargetPhysicalPath, AttachURL: s.cfg.AttachURL}
	if s.placer != nil && !s.isTarget(sid) {
		t, err := s.placer.pick(sid)
		if err != nil {
			return nil, refuse(http.StatusServiceUnavailable, CodeNoSentinel, "%v", err).with(sid)
		}
		target = t
	}
	if s.isTarget(sid) {
		// The sentinel itself: it is the root, nothing to attach to.
		w.AssignedPath = "/" + sid
		p.AssignedPath = w.AssignedPath
	} else {
		w.TargetSystemID, w.TargetPhysicalPath = target.SystemID, target.PhysicalPath
		w.AssignedPath = target.PhysicalPath + "/" + sid
		p.ParentPath, p.AssignedPath = target.PhysicalPath, w.AssignedPath
		tk, _, err := s.issuer.IssueAttach(p)
		if err != nil {
			return nil, err
		}
		g, err := attachGrant(target.AttachURL, tk)
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
	s.cfg.Logger.Info("welcome: placed node", "system_id", sid, "client", subject, "assigned_path", w.AssignedPath,
		"accepted", accepted, "rejected", rejected)
	return w, nil
}
