package ticket

import (
	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
)

// AudienceCA is the audience of CA grant tokens.
const AudienceCA = "ca"

// Claims are the claims of attach tickets and CA grants.
type Claims struct {
	token.Claims
	SystemID         string   `json:"system_id"`
	ParentPath       string   `json:"parent_path,omitempty"`
	AssignedPath     string   `json:"assigned_path"`
	AcceptedLogicals []string `json:"accepted_logicals"`
	InstanceID       string   `json:"instance_id,omitempty"`
}

// AllowsLogical reports whether an address (as in AddressBind.address) may
// be bound by the holder: host addresses must be covered by an accepted
// logical ("*" covers all, "fame.fabric" and "*.fame.fabric" cover
// fame.fabric, its subdomains and the pool form "*.fame.fabric"); physical
// addresses must lie at or under the assigned path.
func (c *Claims) AllowsLogical(addr string) bool {
	a, err := envelope.ParseAddress(addr)
	if err != nil {
		return false
	}
	if a.Host != "" {
		return envelope.LogicalAllowed(c.AcceptedLogicals, a.Host)
	}
	return envelope.UnderPath(a.Path, c.AssignedPath)
}
