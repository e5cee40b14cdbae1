package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/node/admit"
)

// admissionProfile is the admission profile in force: Config.AdmissionProfile, else the
// settings'.
func (c *Config) admissionProfile() string {
	p := c.AdmissionProfile
	if p == "" && c.AdmissionSettings != nil {
		p = c.AdmissionSettings.Profile
	}
	return strings.ToLower(strings.Trim(strings.TrimSpace(p), `"'`))
}

// admissionGivesURL: the attach URL will come from the admission (welcome grant), so a
// missing static URL is not an error.
func (c *Config) admissionGivesURL() bool {
	if c.Admission != nil {
		return c.Admission.Welcome != nil || c.Admission.URL != ""
	}
	return c.AdmissionSettings != nil && c.admissionProfile() == admit.ProfileWelcome
}

// admissionSettings are AdmissionSettings as admit.New should see them. Config fields win
// over the settings, and "direct" without a token URL means no token at all, as it did
// before admission was wired in: a Go sentinel with admission none accepts that, and
// requiring an OAuth2 server there would break every plain setup.
func (c *Config) admissionSettings() admit.Settings {
	s := *c.AdmissionSettings
	s.Profile = c.admissionProfile()
	if (s.Profile == "" || s.Profile == admit.ProfileDirect) && strings.TrimSpace(s.TokenURL) == "" {
		s.Profile = admit.ProfileNone
	}
	if c.URL != "" {
		s.URL = c.URL
	}
	return s
}

// resolveAdmission builds the admission from AdmissionSettings when needed and copies what it
// supplies into the unset Config fields.
func (c *Config) resolveAdmission() error {
	if c.Admission == nil && c.AdmissionSettings != nil {
		adm, err := admit.New(c.admissionSettings(), admit.Options{SystemID: c.SystemID, Logicals: c.RequestedLogicals})
		if err != nil {
			return fmt.Errorf("%w: admission: %w", ErrConfig, err)
		}
		c.Admission = adm
	}
	a := c.Admission
	if a == nil {
		return nil
	}
	if c.SystemID != "" && a.SystemID != "" && c.SystemID != a.SystemID {
		// The ticket and the certificate name the admission's id; attaching with another
		// would be refused.
		return fmt.Errorf("%w: SystemID %q differs from the admission's %q", ErrConfig, c.SystemID, a.SystemID)
	}
	if a.SystemID != "" {
		c.SystemID = a.SystemID
	}
	if c.Token == nil && a.Token != nil {
		c.Token = a.Token
	}
	if c.AttachURL == nil && a.Welcome != nil {
		c.AttachURL = a.AttachURL
	}
	if c.URL == "" {
		c.URL = a.URL
	}
	if c.InstanceID == "" {
		c.InstanceID = a.InstanceID
	}
	if c.HTTPClient == nil {
		c.HTTPClient = a.HTTPClient
	}
	if c.Trust == nil {
		c.Trust = a.Trust
	}
	return nil
}

// attachLogicals are NodeAttach.acceptedLogicals: under welcome admission the grant's (the
// ticket lists exactly those, and the sentinel refuses binds outside them), else the
// requested ones.
func (n *Node) attachLogicals(ctx context.Context) ([]string, error) {
	if a := n.cfg.Admission; a != nil && a.Welcome != nil {
		g, err := a.Welcome.Grant(ctx)
		if err != nil {
			return nil, fmt.Errorf("node: welcome grant: %w", err)
		}
		return g.AcceptedLogicals, nil
	}
	return n.cfg.RequestedLogicals, nil
}

// attachURL is the URL to dial, without the system id.
func (n *Node) attachURL(ctx context.Context) (string, error) {
	if n.cfg.AttachURL == nil {
		return n.cfg.URL, nil
	}
	u, err := n.cfg.AttachURL(ctx)
	if err != nil {
		return "", fmt.Errorf("node: attach URL: %w", err)
	}
	if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
		return "", fmt.Errorf("%w: attach URL %q must start with ws:// or wss://", ErrConfig, u)
	}
	return u, nil
}

// authRefused reports whether a failed dial was the sentinel refusing our credentials: a
// negative NodeAttachAck or a close with 1008 (policy violation) during the handshake.
func authRefused(err error) bool {
	var ae *AttachError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Refused || ae.CloseCode == websocket.StatusPolicyViolation
}

// forgetCredentials drops the cached ticket or access token after a refusal, so the next
// dial presents a fresh one (the welcome or OAuth2 service may have restarted with a new
// key, or the ticket may have been issued for a sentinel that has since moved).
func (n *Node) forgetCredentials() {
	a := n.cfg.Admission
	if a == nil {
		return
	}
	if a.Welcome != nil {
		a.Welcome.Invalidate()
	}
	if a.OAuth2 != nil {
		a.OAuth2.Invalidate()
	}
}

// forgetPlacement drops the cached welcome grant after a dial that failed for another reason
// than a refusal (the sentinel it names is unreachable: dead, partitioned), so the next dial
// says hello again and can be placed on another sentinel of the cluster, with a new ticket
// and, under strict-overlay, a certificate for the new path (certificateForGrant). The
// access token is kept: nothing refused it. A hello per failed dial, under the reconnect
// backoff. False when the node is not admitted by welcome (nothing to forget).
func (n *Node) forgetPlacement() bool {
	a := n.cfg.Admission
	if a == nil || a.Welcome == nil {
		return false
	}
	a.Welcome.Invalidate()
	return true
}
