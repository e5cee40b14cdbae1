package node

import (
	"context"
	"fmt"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node/admit"
)

// startCertificates obtains the node certificate strict-overlay needs before the first
// attach (the sentinel refuses a signing key without x5c), then keeps it renewed on a
// goroutine owned by n.wg that ends with the node. Every renewal is re-announced on the
// live link, so the sentinel never verifies with an expired certificate.
func (n *Node) startCertificates(ctx context.Context) error {
	if n.sec == nil || !n.sec.profile.RequireCertSIDMatch() {
		return nil
	}
	if n.cfg.Certificate != nil {
		chain, err := n.cfg.Certificate(ctx, n.sec.signer.Key)
		if err != nil {
			return fmt.Errorf("node: node certificate: %w", err)
		}
		if len(chain) == 0 {
			return fmt.Errorf("%w: Certificate returned no certificate", ErrConfig)
		}
		n.sec.setCertificate(chain)
		return nil
	}
	a := n.cfg.Admission
	if a == nil || a.Welcome == nil {
		n.log.Warn("strict-overlay without welcome admission: no node certificate, the sentinel will refuse the signing key")
		return nil
	}
	cs, err := a.CertSource(n.sec.signer.Key)
	if err != nil {
		return fmt.Errorf("node: certificate source: %w", err)
	}
	c, err := cs.Certificate(ctx)
	if err != nil {
		return fmt.Errorf("node: node certificate: %w", err)
	}
	n.sec.setCertificate(c.Chain)
	n.certs = cs
	n.log.Info("node certificate", "sid", c.SID, "not_after", c.NotAfter)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = cs.Run(n.ctx, n.onCertificate) // returns only when the node closes
	}()
	return nil
}

// certificateForGrant makes sure, before a NodeAttach is built, that the certificate the
// node presents carries the sid of the path its welcome grant places it at. The first
// certificate was issued for the first placement; a node that re-attaches to another
// sentinel of a cluster (its own died) was placed anew by a fresh hello and gets a new path,
// and a strict-overlay sentinel refuses a signing key whose x5c names another path's sid
// (it checks this at attach, before it accepts anything from the link, so the certificate
// cannot follow in a KeyAnnounce). The key pair, and so the kid, stay the same: the
// cluster's key directory moves the kid to the new path, and channels keyed by it go on.
// No-op without a welcome certificate source.
func (n *Node) certificateForGrant(ctx context.Context) error {
	cs := n.certs
	if cs == nil {
		return nil
	}
	g, err := n.cfg.Admission.Welcome.Grant(ctx)
	if err != nil {
		return fmt.Errorf("node: welcome grant: %w", err)
	}
	c, err := cs.CertificateFor(ctx, g.AssignedPath)
	if err != nil {
		return fmt.Errorf("node: node certificate for %s: %w", g.AssignedPath, err)
	}
	if n.sec.setCertificate(c.Chain) != 0 {
		n.log.Info("node certificate for a new placement", "path", g.AssignedPath, "sid", c.SID, "not_after", c.NotAfter)
	}
	return nil
}

// announceMargin is how long before the held certificate expires a KeyAnnounce is still
// sent; past it the link attaches again (see syncKeys).
const announceMargin = time.Second

// unixNanos is t in unix nanos, 0 for the zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// onCertificate installs a renewed certificate and re-announces the keys.
func (n *Node) onCertificate(c *admit.Certificate) {
	n.mu.Lock()
	l := n.cur
	n.mu.Unlock()
	if l != nil && l.alive() && c.SID != "" && c.SID != l.sid {
		// The renewal's welcome grant placed the node on another path (its hello reached the
		// welcome service of another sentinel): the sentinel of this link would refuse a
		// KeyAnnounce of this certificate, and keep verifying with the old one until it
		// expires. Attach where the grant says instead; the dial installs this certificate.
		n.log.Warn("renewed certificate is for another placement, attaching there", "sid", c.SID, "link_sid", l.sid)
		l.fail(fmt.Errorf("%w: the welcome grant placed the node on another path", errLinkLost))
		return
	}
	if n.sec.setCertificate(c.Chain) == 0 {
		return // the first certificate, already installed before the attach
	}
	n.log.Info("node certificate renewed", "sid", c.SID, "not_after", c.NotAfter)
	if l != nil {
		n.syncKeys(l)
	}
}

// syncKeys sends KeyAnnounce with the current keys when the sentinel holds an older
// certificate for this link (renewed during the attach, or since). The connection stays
// up: the sentinel replaces the stored key's x5c in place.
//
// A renewal that comes too late (the certificate the sentinel holds has expired, or will
// before the announce reaches it: a CA outage, a starved machine) cannot be announced: the
// sentinel verifies the KeyAnnounce with the expired certificate and refuses it, and then
// every envelope of the link, for good. The link is ended instead, and the node attaches
// again with the new certificate in NodeAttach; the sentinel nacks what was in flight.
func (n *Node) syncKeys(l *link) {
	if n.sec == nil || !l.alive() {
		return
	}
	keys, gen, notAfter := n.sec.publicKeys()
	old := l.certGen.Load()
	if gen == old || !l.certGen.CompareAndSwap(old, gen) {
		return
	}
	if held := l.certNotAfter.Load(); held != 0 && time.Now().Add(announceMargin).UnixNano() >= held {
		n.refused.inc(RefusedCertRenewedLate)
		n.log.Warn("certificate renewed after the one the sentinel holds expired, attaching again",
			"expired", time.Unix(0, held).UTC(), "generation", gen)
		l.fail(fmt.Errorf("%w: certificate renewed after the previous one expired", errLinkLost))
		return
	}
	l.certNotAfter.Store(unixNanos(notAfter))
	env, err := envelope.New(&envelope.KeyAnnounce{PhysicalPath: l.assignedPath, Keys: keys, Created: envelope.Now()})
	if err != nil {
		n.log.Error("KeyAnnounce not built", "err", err)
		return
	}
	env.SID, env.TraceID = l.sid, l.traceID
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.AttachTimeout) // l.send gives up when the link ends
	defer cancel()
	if err := n.sendOn(ctx, l, env); err != nil {
		// The link is going away; the next attach carries the new certificate.
		n.log.Warn("KeyAnnounce not sent", "err", err)
		return
	}
	n.log.Debug("keys re-announced", "generation", gen)
}
