package node

import (
	"context"
	"fmt"

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
	n.log.Info("node certificate", "sid", c.SID, "not_after", c.NotAfter)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = cs.Run(n.ctx, n.onCertificate) // returns only when the node closes
	}()
	return nil
}

// onCertificate installs a renewed certificate and re-announces the keys.
func (n *Node) onCertificate(c *admit.Certificate) {
	if n.sec.setCertificate(c.Chain) == 0 {
		return // the first certificate, already installed before the attach
	}
	n.log.Info("node certificate renewed", "sid", c.SID, "not_after", c.NotAfter)
	n.mu.Lock()
	l := n.cur
	n.mu.Unlock()
	if l != nil {
		n.syncKeys(l)
	}
}

// syncKeys sends KeyAnnounce with the current keys when the sentinel holds an older
// certificate for this link (renewed during the attach, or since). The connection stays
// up: the sentinel replaces the stored key's x5c in place.
func (n *Node) syncKeys(l *link) {
	if n.sec == nil || !l.alive() {
		return
	}
	keys, gen := n.sec.publicKeys()
	old := l.certGen.Load()
	if gen == old || !l.certGen.CompareAndSwap(old, gen) {
		return
	}
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
