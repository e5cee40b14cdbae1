package node

import (
	"maps"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons counted by Node.Refusals (and fame_node_refusals_total{reason} when
// Config.Registerer is set).
const (
	RefusedKeyAnnounceUnsigned    = "key_announce_unsigned"     // KeyAnnounce without a verifiable signature
	RefusedKeyAnnounceForeignPath = "key_announce_foreign_path" // a node announced keys for a path not its own
	RefusedKeyAnnounceKidTaken    = "key_announce_kid_taken"    // a kid already owned by another path
	RefusedKeyAnnounceNoCert      = "key_announce_no_cert"      // strict-overlay: no certificate chaining to the trust bundle
	RefusedKeyAnnounceInvalid     = "key_announce_invalid"      // a key failed validation (bad JWK, bad x5c)
	RefusedHeartbeatAckForeign    = "heartbeat_ack_foreign"     // a heartbeat ack that did not come from our sentinel
	RefusedReplay                 = "replay"                    // envelope id seen before
	RefusedStale                  = "stale"                     // envelope ts outside the replay window
	RefusedOverloaded             = "overloaded"                // handlers and their queue were full
	RefusedPendingFull            = "pending_full"              // the client's pending-request cap was reached
	RefusedCertRenewedLate        = "cert_renewed_late"         // our certificate expired at the sentinel before its renewal: link re-attached
)

// refusals counts refusals by reason. The node has no Prometheus registry of its own (it is
// a library inside someone else's program): counts are always kept in memory for
// Node.Refusals, and also exported when the program hands a Registerer in Config.
type refusals struct {
	mu  sync.Mutex
	m   map[string]uint64
	vec *prometheus.CounterVec
}

func newRefusals(reg prometheus.Registerer, nodeID string) (*refusals, error) {
	r := &refusals{m: map[string]uint64{}}
	if reg == nil {
		return r, nil
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "fame_node_refusals_total",
		Help:        "Envelopes and frames the node refused, by reason.",
		ConstLabels: prometheus.Labels{"node": nodeID},
	}, []string{"reason"})
	vec, err := register(reg, vec)
	if err != nil {
		return nil, err
	}
	r.vec = vec
	return r, nil
}

func (r *refusals) inc(reason string) {
	r.mu.Lock()
	r.m[reason]++
	r.mu.Unlock()
	if r.vec != nil {
		r.vec.WithLabelValues(reason).Inc()
	}
}

// Refusals returns how many envelopes and frames this node refused since Connect, by reason
// (the Refused* constants).
func (n *Node) Refusals() map[string]uint64 {
	n.refused.mu.Lock()
	defer n.refused.mu.Unlock()
	return maps.Clone(n.refused.m)
}

// SecureChannels is the number of secure channels this node holds (opened and accepted), for
// diagnostics and tests of channel expiry.
func (n *Node) SecureChannels() int {
	if n.sec == nil {
		return 0
	}
	return n.sec.channels.table.Len()
}
