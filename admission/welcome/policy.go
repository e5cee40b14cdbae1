package welcome

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fame-go/fame/envelope"
)

// ClientGrant is what one OAuth2 client (the bearer token's subject) may be
// admitted as. Without it, every holder of any valid token could name any
// system id — a live replica's included — and any logical, and the CA would
// then certify the stolen path.
type ClientGrant struct {
	// Subject is the OAuth2 client: the token's sub claim (client_id when a
	// token has no sub).
	Subject string
	// SystemIDs are the ids the client may attach as: an exact id, a prefix
	// pattern "math-replica*", or "*" for any id that no other client's
	// exact or prefix pattern names (clients with random ids). The welcome
	// target (the sentinel's own id) is granted only by listing it exactly.
	SystemIDs []string
	// Logicals are the logical patterns the client may request (the same
	// coverage rules as the sentinel's bind check: "fame.fabric" and
	// "*.fame.fabric" cover the domain, its subdomains and the pool form).
	// Empty: a plain client that binds nothing but its own path. "*" is
	// refused by the configuration check (see validateGrants).
	Logicals []string
}

// Errors of the grant configuration.
var (
	ErrGrantSyntax   = errors.New("welcome: invalid client grant")
	ErrGrantWildcard = errors.New("welcome: a grant of logical \"*\" (every address in every domain) is refused; list the domains")
	ErrGrantOverlap  = errors.New("welcome: two clients are granted the same system ids")
)

// ParseGrants reads FAME_WELCOME_GRANTS: grants separated by ";" or new
// lines, each a list of key=value fields separated by spaces:
//
//	sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric;
//	sub=math-client system_ids=*
//
// system_ids and logicals are comma lists; "#" starts a comment that runs to
// the end of the line.
func ParseGrants(s string) ([]ClientGrant, error) {
	var out []ClientGrant
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		lines = append(lines, line)
	}
	for _, entry := range strings.Split(strings.Join(lines, ";"), ";") {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			continue
		}
		var g ClientGrant
		seen := map[string]bool{}
		for _, f := range fields {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				return nil, fmt.Errorf("%w: %q is not key=value (in %q)", ErrGrantSyntax, f, strings.TrimSpace(entry))
			}
			if seen[k] {
				return nil, fmt.Errorf("%w: %s given twice (in %q)", ErrGrantSyntax, k, strings.TrimSpace(entry))
			}
			seen[k] = true
			switch k {
			case "sub", "subject", "client_id":
				g.Subject = v
			case "system_ids", "system_id":
				g.SystemIDs = splitComma(v)
			case "logicals":
				g.Logicals = splitComma(v)
			default:
				return nil, fmt.Errorf("%w: unknown key %q (want sub, system_ids, logicals)", ErrGrantSyntax, k)
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// grantsFromEnv reads FAME_WELCOME_GRANTS and FAME_WELCOME_GRANTS_FILE (same
// syntax, one grant per line); both may be given.
func grantsFromEnv(getenv func(string) string) ([]ClientGrant, error) {
	return LoadGrants(getenv, "FAME_WELCOME_GRANTS")
}

func splitComma(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// idPattern is one parsed system-id pattern.
type idPattern struct {
	any    bool   // "*"
	prefix bool   // value is a prefix
	value  string // exact id or prefix
}

func parseIDPattern(p string) (idPattern, error) {
	if p == "*" {
		return idPattern{any: true}, nil
	}
	v, prefix := strings.CutSuffix(p, "*")
	// A prefix is the start of an id, so it follows the id alphabet; "." and
	// ".." are fine as prefixes ("..x" is a valid id).
	if v == "" || strings.Contains(v, "*") || !(validSystemID(v) || prefix && validSystemID(v+"x")) {
		return idPattern{}, fmt.Errorf("%w: system id pattern %q (want an id, \"prefix*\" or \"*\")", ErrGrantSyntax, p)
	}
	return idPattern{prefix: prefix, value: v}, nil
}

func (p idPattern) matches(id string) bool {
	switch {
	case p.any:
		return true
	case p.prefix:
		return strings.HasPrefix(id, p.value)
	default:
		return id == p.value
	}
}

// overlaps reports whether some id matches both explicit patterns, ignoring
// case (ids differing only in case are too easily confused to belong to two
// clients).
func (p idPattern) overlaps(q idPattern) bool {
	p.value, q.value = strings.ToLower(p.value), strings.ToLower(q.value)
	switch {
	case p.prefix && q.prefix:
		return strings.HasPrefix(p.value, q.value) || strings.HasPrefix(q.value, p.value)
	case p.prefix:
		return strings.HasPrefix(q.value, p.value)
	case q.prefix:
		return strings.HasPrefix(p.value, q.value)
	default:
		return p.value == q.value
	}
}

// clientGrant is a validated ClientGrant.
type clientGrant struct {
	ClientGrant
	ids []idPattern
}

// explicitFor reports whether one of g's exact or prefix patterns names id.
func (g *clientGrant) explicitFor(id string) bool {
	for _, p := range g.ids {
		if !p.any && p.matches(id) {
			return true
		}
	}
	return false
}

// reserves reports whether g's explicit patterns name id ignoring case: a
// "*" client may not take "Math-Replica1" next to a "math-replica*" grant.
func (g *clientGrant) reserves(id string) bool {
	id = strings.ToLower(id)
	for _, p := range g.ids {
		if !p.any && (idPattern{prefix: p.prefix, value: strings.ToLower(p.value)}).matches(id) {
			return true
		}
	}
	return false
}

func (g *clientGrant) hasAny() bool {
	for _, p := range g.ids {
		if p.any {
			return true
		}
	}
	return false
}

// policy is the validated set of grants, by subject.
type policy struct {
	target  string
	targets []string // the other sentinels of a cluster (Config.Targets): root ids too
	bySub   map[string]*clientGrant
	order   []*clientGrant
}

// validateGrants checks the grants and builds the policy. A grant of the
// logical "*" is refused outright rather than allowed behind a flag: it lets
// one credential bind every address of every domain (the exact-bind shadow of
// issue 12), no deployment with per-client grants needs it (list the domains,
// "*.example.org"), and a refusal at start is visible where a warning in a
// log is not.
func validateGrants(gs []ClientGrant, target string, more ...string) (*policy, error) {
	p := &policy{target: target, targets: more, bySub: map[string]*clientGrant{}}
	for i, cg := range gs {
		if cg.Subject == "" {
			return nil, fmt.Errorf("%w: grant %d has no sub", ErrGrantSyntax, i+1)
		}
		if p.bySub[cg.Subject] != nil {
			return nil, fmt.Errorf("%w: sub %q has two grants", ErrGrantSyntax, cg.Subject)
		}
		if len(cg.SystemIDs) == 0 {
			return nil, fmt.Errorf("%w: sub %q has no system_ids", ErrGrantSyntax, cg.Subject)
		}
		g := &clientGrant{ClientGrant: cg}
		for _, s := range cg.SystemIDs {
			ip, err := parseIDPattern(s)
			if err != nil {
				return nil, fmt.Errorf("sub %q: %w", cg.Subject, err)
			}
			g.ids = append(g.ids, ip)
		}
		for _, l := range cg.Logicals {
			if l == "*" {
				return nil, fmt.Errorf("sub %q: %w", cg.Subject, ErrGrantWildcard)
			}
			if !validLogical(l) {
				return nil, fmt.Errorf("%w: sub %q: invalid logical %q", ErrGrantSyntax, cg.Subject, l)
			}
		}
		// One owner per system id: explicit patterns of two clients must not
		// name a common id ("*" is what is left over, so it overlaps nothing).
		for _, other := range p.order {
			for _, a := range g.ids {
				for _, b := range other.ids {
					if !a.any && !b.any && a.overlaps(b) {
						return nil, fmt.Errorf("%w: %q (sub %q) and %q (sub %q)", ErrGrantOverlap,
							pattern(a), cg.Subject, pattern(b), other.Subject)
					}
				}
			}
		}
		p.bySub[cg.Subject] = g
		p.order = append(p.order, g)
	}
	return p, nil
}

func pattern(p idPattern) string {
	switch {
	case p.any:
		return "*"
	case p.prefix:
		return p.value + "*"
	}
	return p.value
}

// allowsID reports whether g may use id.
func (p *policy) allowsID(g *clientGrant, id string) bool {
	if strings.EqualFold(id, p.target) || slices.ContainsFunc(p.targets, func(t string) bool { return strings.EqualFold(id, t) }) {
		// The sentinel's own id gets the root placement: only by name.
		for _, ip := range g.ids {
			if !ip.any && !ip.prefix && ip.value == id {
				return true
			}
		}
		return false
	}
	if g.explicitFor(id) {
		return true
	}
	if !g.hasAny() {
		return false
	}
	for _, other := range p.order {
		if other != g && other.reserves(id) {
			return false // reserved for that client
		}
	}
	return true
}

// newID picks an id for a hello without one: a random id under the grant's
// first prefix, else a random id when "*" is granted, else the first exact
// id. The caller still checks the result with allowsID.
func (p *policy) newID(g *clientGrant) string {
	for _, ip := range g.ids {
		if ip.prefix {
			return ip.value + envelope.NewID()
		}
	}
	if g.hasAny() {
		// A random id falls under another client's prefix only by chance;
		// a few draws settle it, and a pathological configuration gets a
		// refusal from allowsID instead of a loop.
		id := envelope.NewID()
		for i := 0; i < 8 && !p.allowsID(g, id); i++ {
			id = envelope.NewID()
		}
		return id
	}
	return g.ids[0].value
}
