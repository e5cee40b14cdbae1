package node

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// replyMetrics exports the reply cache (replies.go) when the program hands the node a
// Registerer: how full it is, so an operator can size FAME_REPLY_CACHE_* from what it holds,
// and what re-sent requests got from it. nil (no Registerer) costs nothing.
type replyMetrics struct {
	entries prometheus.Gauge
	bytes   prometheus.Gauge
	resends *prometheus.CounterVec
}

// Resend results, the label of fame_node_reply_resends_total.
const (
	resendResultReplayed = "replayed" // the kept replies were sent again
	resendResultRunning  = "running"  // still running: answered when it completes
	resendResultNotKept  = "not_kept" // ran, replies not kept: REPLY_NOT_KEPT nack
	resendResultBusy     = "busy"     // too many replays at once: left to the caller's next re-send
)

func newReplyMetrics(reg prometheus.Registerer, nodeID string) (*replyMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	labels := prometheus.Labels{"node": nodeID}
	m := &replyMetrics{
		entries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fame_node_reply_cache_entries",
			Help: "Requests whose replies the node keeps for re-sent requests.", ConstLabels: labels}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fame_node_reply_cache_bytes",
			Help: "What the kept replies cost, counted against FAME_REPLY_CACHE_BYTES.", ConstLabels: labels}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_node_reply_resends_total",
			Help: "Re-sent requests answered from the reply cache, by result.", ConstLabels: labels}, []string{"result"}),
	}
	var err error
	if m.entries, err = register(reg, m.entries); err != nil {
		return nil, err
	}
	if m.bytes, err = register(reg, m.bytes); err != nil {
		return nil, err
	}
	if m.resends, err = register(reg, m.resends); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name and
// labels (a program that connects a node with the same system id again); another collector
// under that name is an error, not a panic. Used by every node metric (refusals.go too).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return c, err
		}
		existing, ok := are.ExistingCollector.(C)
		if !ok {
			return c, err
		}
		return existing, nil
	}
	return c, nil
}

// size records the cache's fill (called with the cache's lock held).
func (m *replyMetrics) size(entries, bytes int) {
	if m == nil {
		return
	}
	m.entries.Set(float64(entries))
	m.bytes.Set(float64(bytes))
}

func (m *replyMetrics) resend(result string) {
	if m == nil {
		return
	}
	m.resends.WithLabelValues(result).Inc()
}
