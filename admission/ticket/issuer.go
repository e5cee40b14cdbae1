package ticket

import (
	"errors"
	"fmt"
	"time"

	"github.com/fame-go/fame/admission/jose"
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
	"github.com/golang-jwt/jwt/v5"
)

// Placement is what the welcome service decided for a node.
type Placement struct {
	SystemID         string
	InstanceID       string
	ParentPath       string // sentinel physical path; "" for the root itself
	AssignedPath     string
	AcceptedLogicals []string
	// ClientID is the OAuth2 client the welcome service admitted (its
	// token's subject); written as client_id, empty for anonymous hellos.
	ClientID string
}

// Issuer signs tickets with the welcome service's key.
type Issuer struct {
	Key    *jose.SigningKey
	Issuer string        // iss, e.g. https://welcome/fame/welcome
	TTL    time.Duration // default 5 min
	Now    func() time.Time
}

var errNoParent = errors.New("ticket: attach ticket needs a parent path")

// IssueAttach signs an attach ticket (aud = parent path).
func (i *Issuer) IssueAttach(p Placement) (string, *Claims, error) {
	if p.ParentPath == "" {
		return "", nil, errNoParent
	}
	return i.issue(p, p.ParentPath)
}

// IssueCA signs a CA grant (aud = "ca").
func (i *Issuer) IssueCA(p Placement) (string, *Claims, error) {
	return i.issue(p, AudienceCA)
}

func (i *Issuer) issue(p Placement, aud string) (string, *Claims, error) {
	now := time.Now()
	if i.Now != nil {
		now = i.Now()
	}
	ttl := i.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	logicals := p.AcceptedLogicals
	if logicals == nil {
		logicals = []string{} // the reference always writes a list
	}
	c := &Claims{
		Claims: token.Claims{
			Issuer:    i.Issuer,
			Audience:  token.Audience{aud},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        envelope.NewID(),
			ClientID:  p.ClientID,
		},
		SystemID:         p.SystemID,
		ParentPath:       p.ParentPath,
		AssignedPath:     p.AssignedPath,
		AcceptedLogicals: logicals,
		InstanceID:       p.InstanceID,
	}
	s, err := i.Key.Sign(c)
	if err != nil {
		return "", nil, fmt.Errorf("ticket: sign %s token: %w", aud, err)
	}
	return s, c, nil
}
