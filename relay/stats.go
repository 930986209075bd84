package relay

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Byte classes: what the bytes carried. Announce vs body is the figure the
// block-mode benchmark compares.
const (
	classAnnounce  = "announce"  // gossip payloads of tx announcements and compact/pull block announcements
	classBody      = "body"      // tx and block bodies: request responses and push-mode gossip payloads
	classRequest   = "request"   // request frames and non-body responses (headers, errors)
	classOverhead  = "overhead"  // GossipSub framing, control messages (IHAVE/IWANT/GRAFT/...), signatures
	classReconcile = "reconcile" // reconciliation requests and coded symbols (anti-entropy)
)

// Protocol names used in Stats.Protocols and metric labels.
const (
	protoGossip  = "gossipsub"
	protoRequest = "req"
	protoLink    = "txlink" // link-mode tx inventory (txlink.go)
)

// ByteCounts is a pair of byte counters.
type ByteCounts struct {
	In  uint64 `json:"in"`
	Out uint64 `json:"out"`
}

// Stats is a snapshot of the relay's counters since New. Gossip counters
// count GossipSub messages (one per copy sent or received), not items.
type Stats struct {
	// AnnouncementsIn counts gossip messages received on our topics,
	// duplicates included.
	AnnouncementsIn uint64 `json:"announcements_in"`
	// AnnouncementsOut counts gossip messages sent to peers on our topics
	// (each copy counts), originated or forwarded.
	AnnouncementsOut uint64 `json:"announcements_out"`
	// AnnouncementsPublished counts announcements this node originated.
	AnnouncementsPublished uint64 `json:"announcements_published"`
	// DuplicateAnnouncements counts gossip messages received again.
	DuplicateAnnouncements uint64 `json:"duplicate_announcements"`
	// Accepted, Ignored and Rejected count validation results of received
	// announcements.
	Accepted uint64 `json:"accepted"`
	Ignored  uint64 `json:"ignored"`
	Rejected uint64 `json:"rejected"`
	// Fetches counts requests sent for bodies (txs, blocks, block txs).
	Fetches uint64 `json:"fetches"`
	// FetchFailures counts those requests that did not deliver everything
	// asked (timeout, not found, mismatch, malformed, stream error).
	FetchFailures uint64 `json:"fetch_failures"`
	// BodiesReceived counts tx and block bodies received (fetched or pushed).
	BodiesReceived uint64 `json:"bodies_received"`
	// DuplicateBodies counts received bodies we already held: fetched txs
	// the pool already knew, pushed blocks delivered again.
	DuplicateBodies uint64 `json:"duplicate_bodies"`
	// RequestsServed counts requests answered to peers.
	RequestsServed uint64 `json:"requests_served"`
	// RequestsBusy counts requests answered busy because the response bytes
	// held at once or the node's upload cap were at their limit (not the
	// requester's fault; budget and flood refusals are offenses instead).
	RequestsBusy uint64 `json:"requests_busy"`
	// BlocksForwardedEarly counts block announcements forwarded before the
	// block was stored (cut-through); LateInvalidBlocks those of them whose
	// block then failed validation.
	BlocksForwardedEarly uint64 `json:"blocks_forwarded_early"`
	LateInvalidBlocks    uint64 `json:"late_invalid_blocks"`
	// BlockTxnNeeded counts compact blocks this node lacked txs of after
	// looking up its pool (each asked for them by getblocktxn);
	// BlockTxnFromPool those of them whose missing txs all reached the pool
	// (fetched as txs) before the getblocktxn was answered, which was then
	// withdrawn (arrivals.go).
	BlockTxnNeeded   uint64 `json:"block_txn_needed"`
	BlockTxnFromPool uint64 `json:"block_txn_from_pool"`
	// TxAnnouncementsEarly counts tx announcements forwarded before their
	// bodies were fetched (cut-through, txcut.go); in link mode, tx id
	// prefixes announced onwards while their bodies were fetched.
	TxAnnouncementsEarly uint64 `json:"tx_announcements_early"`
	// BlockBytesIn counts what blocks cost this node to receive: block
	// announcement payloads (compact, pull or push, prefilled txs
	// included) and the responses to its block and getblocktxn requests
	// (catch-up sync not included). It overlaps the byte classes.
	BlockBytesIn uint64 `json:"block_bytes_in"`
	// TxAnnounceBytesIn counts the payloads of tx announcements received
	// (each copy; in link mode, TxSeen messages), and TxBodyBytesIn the tx bodies received: responses to
	// this node's tx requests and, in push mode, tx gossip payloads. The
	// two say what announcing txs costs against what it fetches, apart
	// from blocks (whose compact announcements carry prefilled txs) and
	// from GossipSub framing, which is not split by topic. Both overlap
	// the byte classes.
	TxAnnounceBytesIn uint64 `json:"tx_announce_bytes_in"`
	TxBodyBytesIn     uint64 `json:"tx_body_bytes_in"`
	// TxAnnounceWireBytesIn counts the same tx announcements as they came
	// on the wire, each message's GossipSub envelope (topic name, field
	// framing) included; control messages (IHAVE, IWANT, IDONTWANT) and
	// the RPC's own framing are not split by topic and stay out. A TxSeen
	// message's wire bytes are its frame: length prefix and message.
	TxAnnounceWireBytesIn uint64 `json:"tx_announce_wire_bytes_in"`
	// TxSeenDropped counts link-mode tx inventory lost here: messages the
	// transport would not queue for a peer, and received ones whose
	// sender had all its fetch slots busy (txlink.go).
	TxSeenDropped uint64 `json:"tx_seen_dropped"`
	// Reconciliations counts reconciliation sessions this node ran that
	// decoded; ReconcileListed those whose difference was too large to
	// decode and that pulled from a listing of the peer's pool instead;
	// ReconcilePulled the txs both brought into the pool.
	Reconciliations uint64 `json:"reconciliations"`
	ReconcileListed uint64 `json:"reconcile_listed"`
	ReconcilePulled uint64 `json:"reconcile_pulled"`
	// BytesIn and BytesOut total both protocols.
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	// Protocols splits the bytes by protocol: "gossipsub", "req" and,
	// once link-mode inventory has flowed, "txlink".
	Protocols map[string]ByteCounts `json:"protocols"`
	// Classes splits the bytes by what they carried: "announce", "body",
	// "request" and "overhead".
	Classes map[string]ByteCounts `json:"classes"`
}

type byteCounter struct{ in, out atomic.Uint64 }

// counters are the live counters behind Stats; all fields are atomics.
type counters struct {
	annIn, annOut, annPub, dupAnn atomic.Uint64
	accepted, ignored, rejected   atomic.Uint64
	fetches, fetchFailures        atomic.Uint64
	bodies, dupBodies, served     atomic.Uint64
	serveBusy                     atomic.Uint64
	earlyForward, lateInvalid     atomic.Uint64
	blockTxnNeeded                atomic.Uint64
	blockTxnFromPool              atomic.Uint64
	earlyTxForward                atomic.Uint64
	blockIn                       atomic.Uint64
	txAnnIn, txBodyIn, txAnnWire  atomic.Uint64
	reconciled, reconcilePulled   atomic.Uint64
	reconcileListed               atomic.Uint64
	reqReconcile                  byteCounter
	gossipAnnounce, gossipBody    byteCounter
	gossipTotal                   byteCounter
	reqRequest, reqBody           byteCounter
	linkTotal, linkPayload        byteCounter // TxSeen frames, and their messages alone
	linkDropped                   atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		AnnouncementsIn:        c.annIn.Load(),
		AnnouncementsOut:       c.annOut.Load(),
		AnnouncementsPublished: c.annPub.Load(),
		DuplicateAnnouncements: c.dupAnn.Load(),
		Accepted:               c.accepted.Load(),
		Ignored:                c.ignored.Load(),
		Rejected:               c.rejected.Load(),
		Fetches:                c.fetches.Load(),
		FetchFailures:          c.fetchFailures.Load(),
		BodiesReceived:         c.bodies.Load(),
		DuplicateBodies:        c.dupBodies.Load(),
		RequestsServed:         c.served.Load(),
		RequestsBusy:           c.serveBusy.Load(),
		BlocksForwardedEarly:   c.earlyForward.Load(),
		LateInvalidBlocks:      c.lateInvalid.Load(),
		BlockTxnNeeded:         c.blockTxnNeeded.Load(),
		BlockTxnFromPool:       c.blockTxnFromPool.Load(),
		TxAnnouncementsEarly:   c.earlyTxForward.Load(),
		BlockBytesIn:           c.blockIn.Load(),
		TxAnnounceBytesIn:      c.txAnnIn.Load(),
		TxBodyBytesIn:          c.txBodyIn.Load(),
		TxAnnounceWireBytesIn:  c.txAnnWire.Load(),
		TxSeenDropped:          c.linkDropped.Load(),
		Reconciliations:        c.reconciled.Load(),
		ReconcileListed:        c.reconcileListed.Load(),
		ReconcilePulled:        c.reconcilePulled.Load(),
	}
	gIn, gOut := c.gossipTotal.in.Load(), c.gossipTotal.out.Load()
	rqIn, rqOut := c.reqRequest.in.Load(), c.reqRequest.out.Load()
	rbIn, rbOut := c.reqBody.in.Load(), c.reqBody.out.Load()
	aIn, aOut := c.gossipAnnounce.in.Load(), c.gossipAnnounce.out.Load()
	gbIn, gbOut := c.gossipBody.in.Load(), c.gossipBody.out.Load()
	rcIn, rcOut := c.reqReconcile.in.Load(), c.reqReconcile.out.Load()
	// Payloads first: noteLinkBytes adds the total first, so a snapshot
	// between the two never sees more payload than total.
	lpIn, lpOut := c.linkPayload.in.Load(), c.linkPayload.out.Load()
	lIn, lOut := c.linkTotal.in.Load(), c.linkTotal.out.Load()
	s.Protocols = map[string]ByteCounts{
		protoGossip:  {In: gIn, Out: gOut},
		protoRequest: {In: rqIn + rbIn + rcIn, Out: rqOut + rbOut + rcOut},
	}
	if lIn+lOut > 0 {
		s.Protocols[protoLink] = ByteCounts{In: lIn, Out: lOut}
	}
	sub := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	s.Classes = map[string]ByteCounts{
		classAnnounce:  {In: aIn + lpIn, Out: aOut + lpOut},
		classBody:      {In: gbIn + rbIn, Out: gbOut + rbOut},
		classRequest:   {In: rqIn, Out: rqOut},
		classOverhead:  {In: sub(gIn, aIn+gbIn) + sub(lIn, lpIn), Out: sub(gOut, aOut+gbOut) + sub(lOut, lpOut)},
		classReconcile: {In: rcIn, Out: rcOut},
	}
	s.BytesIn = gIn + rqIn + rbIn + rcIn + lIn
	s.BytesOut = gOut + rqOut + rbOut + rcOut + lOut
	return s
}

// Metrics holds the relay's Prometheus collectors. One Metrics may be shared
// by several relays in one process (their counts add up). A nil *Metrics is
// valid and records nothing.
type Metrics struct {
	announcements *prometheus.CounterVec // dir, topic
	duplicates    *prometheus.CounterVec // topic
	validation    *prometheus.CounterVec // topic, result
	fetches       *prometheus.CounterVec // kind
	fetchFailures *prometheus.CounterVec // kind, reason
	bodies        *prometheus.CounterVec // kind
	dupBodies     *prometheus.CounterVec // kind
	bytes         *prometheus.CounterVec // dir, proto, class
	served        *prometheus.CounterVec // request
	offenses      *prometheus.CounterVec // offense
	inflight      prometheus.Gauge
	mesh          *prometheus.GaugeVec // topic
}

// NewMetrics creates the relay's collectors and registers them with reg
// (nil: not registered, e.g. for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "rumor", "relay"
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &Metrics{
		announcements: cv("announcements_total", "Gossip messages on relay topics by direction (in, out, published).", "dir", "topic"),
		duplicates:    cv("duplicate_announcements_total", "Gossip messages received again.", "topic"),
		validation:    cv("validation_total", "Validation results of received announcements.", "topic", "result"),
		fetches:       cv("fetches_total", "Body requests sent.", "kind"),
		fetchFailures: cv("fetch_failures_total", "Body requests that did not deliver everything.", "kind", "reason"),
		bodies:        cv("bodies_received_total", "Bodies received (fetched or pushed).", "kind"),
		dupBodies:     cv("duplicate_bodies_total", "Bodies received that were already held.", "kind"),
		bytes:         cv("bytes_total", "Bytes by direction, protocol and class (announce, body, request, overhead).", "dir", "proto", "class"),
		served:        cv("requests_served_total", "Requests answered to peers.", "request"),
		offenses:      cv("offenses_total", "Peer offenses reported to the penalty hook.", "offense"),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "fetch_items",
			Help: "Items the fetch scheduler tracks."}),
		mesh: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "mesh_peers",
			Help: "GossipSub mesh peers per topic."}, []string{"topic"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.announcements, m.duplicates, m.validation, m.fetches, m.fetchFailures,
			m.bodies, m.dupBodies, m.bytes, m.served, m.offenses, m.inflight, m.mesh} {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *Metrics) addBytes(dir, proto, class string, n int) {
	if m != nil && n > 0 {
		m.bytes.WithLabelValues(dir, proto, class).Add(float64(n))
	}
}

// Each helper below is a no-op on a nil *Metrics.

func (m *Metrics) announcement(dir, topic string) {
	if m != nil {
		m.announcements.WithLabelValues(dir, topic).Inc()
	}
}

func (m *Metrics) duplicate(topic string) {
	if m != nil {
		m.duplicates.WithLabelValues(topic).Inc()
	}
}

func (m *Metrics) validated(topic, result string) {
	if m != nil {
		m.validation.WithLabelValues(topic, result).Inc()
	}
}

func (m *Metrics) fetched(kind string) {
	if m != nil {
		m.fetches.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) fetchFailed(kind, reason string) {
	if m != nil {
		m.fetchFailures.WithLabelValues(kind, reason).Inc()
	}
}

func (m *Metrics) body(kind string, dup bool) {
	if m == nil {
		return
	}
	if dup {
		m.dupBodies.WithLabelValues(kind).Inc()
		return
	}
	m.bodies.WithLabelValues(kind).Inc()
}

func (m *Metrics) servedRequest(req string) {
	if m != nil {
		m.served.WithLabelValues(req).Inc()
	}
}

func (m *Metrics) offense(o Offense) {
	if m != nil {
		m.offenses.WithLabelValues(o.String()).Inc()
	}
}

func (m *Metrics) setInflight(n int) {
	if m != nil {
		m.inflight.Set(float64(n))
	}
}

func (m *Metrics) setMesh(topic string, n int) {
	if m != nil {
		m.mesh.WithLabelValues(topic).Set(float64(n))
	}
}
