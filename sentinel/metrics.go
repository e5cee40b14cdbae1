package sentinel

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/stickiness"
)

// metrics are the sentinel's Prometheus series. Per-frame-type counters are resolved once per
// known type so that counting an envelope does not allocate.
type metrics struct {
	reg           *prometheus.Registry
	connections   prometheus.Gauge
	attaches      prometheus.Counter
	attachRefused *prometheus.CounterVec
	malformed     prometheus.Counter
	limitRefusals *prometheus.CounterVec
	nacks         *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	repins        prometheus.Counter
	secureCloses  prometheus.Counter
	restoreWaits  prometheus.Counter     // calls nacked while their restored replica re-attaches (sticky.go)
	refusals      *prometheus.CounterVec // fame_security_refusals_total (ownership.go)
	recent        *refusalRing           // the last refusals of every kind, for the status page (refusalring.go)

	receivedByType map[string]prometheus.Counter
	routedByType   map[string]prometheus.Counter
	receivedOther  prometheus.Counter
	routedOther    prometheus.Counter
}

var knownFrameTypes = []string{
	envelope.TypeNodeAttach, envelope.TypeNodeAttachAck, envelope.TypeNodeHello, envelope.TypeNodeWelcome,
	envelope.TypeNodeReject, envelope.TypeAddressBind, envelope.TypeAddressBindAck, envelope.TypeAddressUnbind,
	envelope.TypeAddressUnbindAck, envelope.TypeCapabilityAdvertise, envelope.TypeCapabilityAdvertiseAck,
	envelope.TypeCapabilityWithdraw, envelope.TypeCapabilityWithdrawAck, envelope.TypeData, envelope.TypeDeliveryAck,
	envelope.TypeCreditUpdate, envelope.TypeNodeHeartbeat, envelope.TypeNodeHeartbeatAck, envelope.TypeKeyRequest,
	envelope.TypeKeyAnnounce, envelope.TypeSecureOpen, envelope.TypeSecureAccept, envelope.TypeSecureClose,
}

// metricSources are the readings the gauges take at scrape time, from the components that
// own them; a nil source reads as zero.
type metricSources struct {
	queuedBytes      func() int64
	globalQueueBytes int64
	routeSizes       func() (children, exact, pools int)
	sticky           func() stickiness.Stats
}

func newMetrics(src metricSources) *metrics {
	if src.queuedBytes == nil {
		src.queuedBytes = func() int64 { return 0 }
	}
	if src.routeSizes == nil {
		src.routeSizes = func() (int, int, int) { return 0, 0, 0 }
	}
	if src.sticky == nil {
		src.sticky = func() stickiness.Stats { return stickiness.Stats{} }
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{reg: reg, recent: &refusalRing{}}
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fame_connections", Help: "Open WebSocket connections."})
	m.attaches = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_attaches_total", Help: "Successful node attaches."})
	m.attachRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_attach_refused_total", Help: "Refused attaches by reason."}, []string{"reason"})
	m.malformed = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_malformed_total", Help: "Messages that were not valid envelopes (connection closed)."})
	m.limitRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_limit_refusals_total",
		Help: "Envelopes, frames, attaches and requests refused by a configured bound, by reason (see sentinel/limits.go)."}, []string{"reason"})
	for _, r := range allLimitReasons {
		m.limitRefusals.WithLabelValues(r) // every reason shows from the start, at 0
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fame_queued_bytes", Help: "Bytes in the send queues of every connection."},
		func() float64 { return float64(src.queuedBytes()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fame_queued_bytes_limit", Help: "The bound on fame_queued_bytes."},
		func() float64 { return float64(src.globalQueueBytes) }))
	m.nacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_nacks_total", Help: "Negative acknowledgements by code."}, []string{"code"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_dropped_total", Help: "Envelopes dropped without a nack, by reason."}, []string{"reason"})
	m.repins = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_stickiness_repins_total", Help: "Sessions moved to another replica after theirs was lost."})
	m.secureCloses = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_secure_close_sent_total", Help: "SecureClose frames sent to clients whose channel replica was lost."})
	m.restoreWaits = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_stickiness_restore_waits_total",
		Help: "Calls nacked PEER_UNREACHABLE (retryable) after a restart because the replica their restored binding names had not re-attached yet."})
	m.refusals = newRefusalCounter()
	f(m.refusals)
	received := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_envelopes_received_total", Help: "Envelopes received by frame type."}, []string{"frame"})
	routed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_envelopes_routed_total", Help: "Envelopes forwarded by frame type."}, []string{"frame"})
	for _, c := range []prometheus.Collector{m.connections, m.attaches, m.attachRefused, m.malformed, m.limitRefusals,
		m.nacks, m.dropped, m.repins, m.secureCloses, m.restoreWaits, received, routed} {
		f(c)
	}
	m.receivedByType = map[string]prometheus.Counter{}
	m.routedByType = map[string]prometheus.Counter{}
	for _, t := range knownFrameTypes {
		m.receivedByType[t] = received.WithLabelValues(t)
		m.routedByType[t] = routed.WithLabelValues(t)
	}
	m.receivedOther = received.WithLabelValues("other")
	m.routedOther = routed.WithLabelValues("other")
	sizes := func(name, help string, pick func(c, e, p int) int) {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			c, e, p := src.routeSizes()
			return float64(pick(c, e, p))
		}))
	}
	sizes("fame_route_children", "Attached nodes.", func(c, _, _ int) int { return c })
	sizes("fame_route_exact", "Exact address routes.", func(_, e, _ int) int { return e })
	sizes("fame_route_pools", "Replica pools.", func(_, _, p int) int { return p })
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fame_stickiness_bindings", Help: "Session bindings in the stickiness table."},
		func() float64 { return float64(src.sticky().Size) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fame_stickiness_channels", Help: "Channel bindings in the stickiness table."},
		func() float64 { return float64(src.sticky().Channels) }))
	f(stickyCollector{src.sticky})
	return m
}

// stickyCollector exports the binding table's counters, read once per scrape.
type stickyCollector struct{ stats func() stickiness.Stats }

var (
	descStickyLookups  = prometheus.NewDesc("fame_stickiness_lookups_total", "Binding lookups by kind (session, channel) and result (hit, miss).", []string{"kind", "result"}, nil)
	descStickyEvicted  = prometheus.NewDesc("fame_stickiness_evictions_total", "Bindings dropped by the LRU bound.", nil, nil)
	descStickyExpired  = prometheus.NewDesc("fame_stickiness_expired_total", "Bindings dropped after their idle TTL.", nil, nil)
	descStickyPurged   = prometheus.NewDesc("fame_stickiness_purged_total", "Bindings removed because their replica was lost, by kind.", []string{"kind"}, nil)
	descAFTVerified    = prometheus.NewDesc("fame_aft_verified_total", "AFT tokens verified.", nil, nil)
	descAFTRefused     = prometheus.NewDesc("fame_aft_refused_total", "AFT tokens refused, by reason.", []string{"reason"}, nil)
	descStickyStoreDrp = prometheus.NewDesc("fame_stickiness_store_dropped_total", "Binding changes the persistence queue could not take.", nil, nil)
	descStoreCorrupt   = prometheus.NewDesc("fame_store_corrupt_total", "Corrupt stickiness store files set aside as <path>.corrupt-<time> (unreadable file moved, or file with undecodable records copied).", nil, nil)
	descStoreDeleted   = prometheus.NewDesc("fame_store_records_deleted_total", "Stickiness store records deleted by the load-time and periodic cleanup, by reason (expired, undecodable, departed_member).", []string{"reason"}, nil)
)

func (stickyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStickyLookups, descStickyEvicted, descStickyExpired, descStickyPurged,
		descAFTVerified, descAFTRefused, descStickyStoreDrp, descStoreCorrupt, descStoreDeleted} {
		ch <- d
	}
}

func (c stickyCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descStickyLookups, st.Hits, "session", "hit")
	counter(descStickyLookups, st.Misses, "session", "miss")
	counter(descStickyLookups, st.ChannelHits, "channel", "hit")
	counter(descStickyLookups, st.ChannelMisses, "channel", "miss")
	counter(descStickyEvicted, st.Evictions)
	counter(descStickyExpired, st.Expired)
	counter(descStickyPurged, st.PurgedSessions, "session")
	counter(descStickyPurged, st.PurgedChannels, "channel")
	counter(descAFTVerified, st.AFTVerified)
	for reason, n := range st.AFTRefused {
		counter(descAFTRefused, n, string(reason))
	}
	counter(descStickyStoreDrp, st.StoreDropped)
	counter(descStoreCorrupt, st.Store.Corrupt)
	counter(descStoreDeleted, st.Store.DeletedExpired, "expired")
	counter(descStoreDeleted, st.Store.DeletedBad, "undecodable")
	counter(descStoreDeleted, st.Store.DeletedMembers, "departed_member")
}

func (m *metrics) received(ft []byte) {
	if c, ok := m.receivedByType[string(ft)]; ok {
		c.Inc()
		return
	}
	m.receivedOther.Inc()
}

func (m *metrics) routed(ft []byte) {
	if c, ok := m.routedByType[string(ft)]; ok {
		c.Inc()
		return
	}
	m.routedOther.Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
