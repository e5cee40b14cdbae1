package admit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fame-go/fame/envelope"
)

// Grant purposes and types (security.md §3.3, A.6).
const (
	PurposeAttach = "node.attach"
	PurposeCASign = "ca_sign"

	typeWSGrant = "WebSocketConnectionGrant"
)

// Grant is what a NodeWelcome gives a node: where and how to attach, and
// how to obtain a certificate.
type Grant struct {
	SystemID   string // as placed; equals the hello's systemId
	InstanceID string

	AttachURL   string // e.g. wss://sentinel/fame/v1/attach/ws/downstream (no system id)
	AttachToken string // attach ticket, sent as Sec-WebSocket-Protocol "<prefix>, <token>"
	// AttachPrefix is the subprotocol prefix, "bearer" unless the grant says otherwise.
	AttachPrefix string

	// ExpiresAt is when the first of the attach ticket, the CA grant token
	// and the welcome itself expires, on the local clock.
	ExpiresAt time.Time

	AssignedPath       string
	TargetSystemID     string
	TargetPhysicalPath string
	AcceptedLogicals   []string
	RejectedLogicals   []string

	CAURL        string // ca_sign grant URL (the CA base; sign at CAURL + "/sign")
	CAToken      string
	CAHeaderName string // "Authorization" unless the grant says otherwise
}

// HasAttach reports whether the welcome carried a node.attach grant.
func (g *Grant) HasAttach() bool { return g.AttachURL != "" }

// wire shapes, accepting both spellings the reference emits (A.6: pydantic
// writes snake_case inside grants, camelCase elsewhere; "param" is the old
// name of both the prefix and the header name).
type wireGrant struct {
	Type    string          `json:"type"`
	Purpose string          `json:"purpose"`
	URL     string          `json:"url"`
	Auth    json.RawMessage `json:"auth"`
}

type wireAuth struct {
	Type                   string        `json:"type"`
	TokenProviderSnake     *wireProvider `json:"token_provider"`
	TokenProviderCamel     *wireProvider `json:"tokenProvider"`
	SubprotocolPrefixSnake string        `json:"subprotocol_prefix"`
	SubprotocolPrefixCamel string        `json:"subprotocolPrefix"`
	HeaderNameSnake        string        `json:"header_name"`
	HeaderNameCamel        string        `json:"headerName"`
	Param                  string        `json:"param"`
}

type wireProvider struct {
	Type  string `json:"type"`
	Token string `json:"token"`
}

func (a *wireAuth) provider() *wireProvider {
	if a.TokenProviderSnake != nil {
		return a.TokenProviderSnake
	}
	return a.TokenProviderCamel
}

// ParseWelcome decodes a welcome service answer (a NodeWelcome envelope) into
// a Grant. now is the local time the answer arrived, used to place token
// expiries on the local clock. A NodeReject is returned as ErrRejected.
func ParseWelcome(body []byte, now time.Time) (*Grant, error) {
	env, err := envelope.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("%w: welcome answer is not an envelope: %v", ErrBadResponse, err)
	}
	f, err := env.DecodeFrame()
	if err != nil {
		return nil, fmt.Errorf("%w: welcome frame: %v", ErrBadResponse, err)
	}
	switch fr := f.(type) {
	case *envelope.NodeWelcome:
		return grantFromWelcome(fr, now)
	case *envelope.NodeReject:
		return nil, fmt.Errorf("%w: welcome service rejected the node: %s", ErrRejected, fr.Reason)
	default:
		return nil, fmt.Errorf("%w: welcome answer carries %s, want NodeWelcome", ErrBadResponse, f.FrameType())
	}
}

func grantFromWelcome(w *envelope.NodeWelcome, now time.Time) (*Grant, error) {
	if w.SystemID == "" {
		return nil, fmt.Errorf("%w: NodeWelcome has no systemId", ErrBadResponse)
	}
	g := &Grant{
		SystemID: w.SystemID, InstanceID: w.InstanceID, AssignedPath: w.AssignedPath,
		TargetSystemID: w.TargetSystemID, TargetPhysicalPath: w.TargetPhysicalPath,
		AcceptedLogicals: w.AcceptedLogicals, RejectedLogicals: w.RejectedLogicals,
	}
	for i, raw := range w.ConnectionGrants {
		var wg wireGrant
		if err := json.Unmarshal(raw, &wg); err != nil {
			return nil, fmt.Errorf("%w: connectionGrants[%d]: %v", ErrBadResponse, i, err)
		}
		switch {
		case wg.Purpose == PurposeAttach || (wg.Purpose == "" && wg.Type == typeWSGrant):
			if g.AttachURL != "" {
				continue // the first attach grant wins, as in the reference
			}
			if err := g.setAttach(i, &wg); err != nil {
				return nil, err
			}
		case wg.Purpose == PurposeCASign:
			if g.CAURL != "" {
				continue
			}
			if err := g.setCA(i, &wg); err != nil {
				return nil, err
			}
		}
	}
	g.ExpiresAt = earliestExpiry(now, w.ExpiresAt, g.AttachToken, g.CAToken)
	return g, nil
}

func (g *Grant) setAttach(i int, wg *wireGrant) error {
	if !strings.HasPrefix(wg.URL, "ws://") && !strings.HasPrefix(wg.URL, "wss://") {
		return fmt.Errorf("%w: connectionGrants[%d]: attach URL %q is not ws:// or wss://", ErrBadResponse, i, wg.URL)
	}
	a, tok, err := grantAuth(i, wg)
	if err != nil {
		return err
	}
	g.AttachURL, g.AttachToken = wg.URL, tok
	g.AttachPrefix = firstNonEmpty(a.SubprotocolPrefixSnake, a.SubprotocolPrefixCamel, a.Param, "bearer")
	return nil
}

func (g *Grant) setCA(i int, wg *wireGrant) error {
	if !strings.HasPrefix(wg.URL, "http://") && !strings.HasPrefix(wg.URL, "https://") {
		return fmt.Errorf("%w: connectionGrants[%d]: CA URL %q is not http(s)", ErrBadResponse, i, wg.URL)
	}
	a, tok, err := grantAuth(i, wg)
	if err != nil {
		return err
	}
	g.CAURL, g.CAToken = wg.URL, tok
	g.CAHeaderName = firstNonEmpty(a.HeaderNameSnake, a.HeaderNameCamel, a.Param, "Authorization")
	return nil
}

// grantAuth reads a grant's auth: none/NoAuth gives no token; otherwise a
// StaticTokenProvider with a header-safe token is required, since any other
// provider would need credentials the welcome cannot hand over.
func grantAuth(i int, wg *wireGrant) (*wireAuth, string, error) {
	a := &wireAuth{}
	if len(wg.Auth) == 0 || string(wg.Auth) == "null" {
		return a, "", nil
	}
	if err := json.Unmarshal(wg.Auth, a); err != nil {
		return nil, "", fmt.Errorf("%w: connectionGrants[%d].auth: %v", ErrBadResponse, i, err)
	}
	if a.Type == "NoAuth" {
		return a, "", nil
	}
	p := a.provider()
	if p == nil {
		return nil, "", fmt.Errorf("%w: connectionGrants[%d].auth (%s) has no token provider", ErrBadResponse, i, a.Type)
	}
	if p.Type != "" && p.Type != "StaticTokenProvider" {
		return nil, "", fmt.Errorf("%w: connectionGrants[%d].auth: token provider %q is not supported", ErrBadResponse, i, p.Type)
	}
	if p.Token == "" {
		return nil, "", fmt.Errorf("%w: connectionGrants[%d].auth: empty token", ErrBadResponse, i)
	}
	if err := checkTokenChars(fmt.Sprintf("connectionGrants[%d] token", i), p.Token); err != nil {
		return nil, "", err
	}
	return a, p.Token, nil
}

// welcomeTimeLayouts: the reference writes RFC 3339 with Z or +00:00 and
// optional fractions; a naive Python isoformat (no zone) is read as UTC.
var welcomeTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

func parseWelcomeTime(s string) (time.Time, bool) {
	for _, l := range welcomeTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// earliestExpiry is the first expiry among the welcome and its tokens; a
// token that is not a JWT or a time that cannot be parsed does not count.
// With none at all the grant is treated as good for DefaultTokenTTL.
func earliestExpiry(now time.Time, welcomeExp string, tokens ...string) time.Time {
	var out time.Time
	consider := func(t time.Time) {
		if out.IsZero() || t.Before(out) {
			out = t
		}
	}
	if t, ok := parseWelcomeTime(welcomeExp); ok {
		consider(t)
	}
	for _, tok := range tokens {
		if t, ok := localExpiry(tok, now); ok {
			consider(t)
		}
	}
	if out.IsZero() {
		return now.Add(DefaultTokenTTL)
	}
	return out
}
