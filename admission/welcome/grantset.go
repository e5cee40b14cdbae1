package welcome

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// GrantSet is a validated set of client grants for admission checks outside
// the welcome service: the sentinel's direct profile, where an OAuth2 access
// token reaches the sentinel without a ticket, applies the same grants with
// the same matching rules (one owner per system id pattern, "*" only for ids
// no other client names, no logical "*").
type GrantSet struct {
	p *policy
}

// NewGrantSet validates gs as the welcome service does. target is the id
// that only an exact pattern may claim (the sentinel's own id).
func NewGrantSet(gs []ClientGrant, target string) (*GrantSet, error) {
	p, err := validateGrants(gs, target)
	if err != nil {
		return nil, err
	}
	return &GrantSet{p: p}, nil
}

// Len is the number of grants.
func (s *GrantSet) Len() int { return len(s.p.order) }

// Grants returns a copy of every grant, in the order given (a hot reload compares two sets).
func (s *GrantSet) Grants() []ClientGrant {
	out := make([]ClientGrant, len(s.p.order))
	for i, g := range s.p.order {
		out[i] = ClientGrant{Subject: g.Subject, SystemIDs: slices.Clone(g.SystemIDs), Logicals: slices.Clone(g.Logicals)}
	}
	return out
}

// Lookup returns a copy of subject's grant.
func (s *GrantSet) Lookup(subject string) (ClientGrant, bool) {
	g := s.p.bySub[subject]
	if g == nil {
		return ClientGrant{}, false
	}
	return ClientGrant{Subject: g.Subject, SystemIDs: slices.Clone(g.SystemIDs), Logicals: slices.Clone(g.Logicals)}, true
}

// AllowsID reports whether subject may use system id id (false when it has
// no grant).
func (s *GrantSet) AllowsID(subject, id string) bool {
	g := s.p.bySub[subject]
	return g != nil && s.p.allowsID(g, id)
}

// LoadGrants reads grants from the variable name (ParseGrants syntax) and
// from the file named by name+"_FILE" (one grant per line); both may be
// given. Errors name the variable.
func LoadGrants(getenv func(string) string, name string) ([]ClientGrant, error) {
	return ReadGrants(name, getenv(name), getenv(name+"_FILE"))
}

// ReadGrants parses inline grants (ParseGrants syntax) and those of the file named file (one
// per line); both may be given. Errors name the setting they came from: name, or name_FILE.
func ReadGrants(name, inline, file string) ([]ClientGrant, error) {
	src := inline
	if f := strings.TrimSpace(file); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s_FILE: %w", name, err)
		}
		src += "\n" + string(b)
	}
	gs, err := ParseGrants(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return gs, nil
}
