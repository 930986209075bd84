package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rumor-relay/rumor/peers"
)

// metricsShutdownTimeout bounds Close's wait for a scrape in flight.
const metricsShutdownTimeout = 5 * time.Second

// metricsServer serves /metrics (the node's own registry: relay, node and
// libp2p metrics, Go and process collectors) and, on a loopback address
// only, /debug/pprof/ beside it: Prometheus often scrapes from another
// host, but pprof hands anyone who reaches it the command line, stack
// traces and CPU profiles (each costs the node CPU for as long as the
// caller asks), with no authentication.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

func startMetrics(addr string, reg *prometheus.Registry) (*metricsServer, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if isLoopbackAddr(addr) {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	} else {
		log.Infow("metrics address is not loopback: /debug/pprof/ is off", "addr", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	m := &metricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("metrics server stopped", "err", err)
		}
	}()
	log.Infow("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return m, nil
}

func (m *metricsServer) addr() string { return m.ln.Addr().String() }

func (m *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if err != nil {
		m.srv.Close()
	}
	m.wg.Wait()
	return err
}

// registerNodeMetrics adds gauges read at scrape time: chain height, mempool
// size, peer count, the histogram of peer scores and the bans in force (the
// relay exports mesh sizes per topic; peerMetrics counts offenses and bans). The relay registers its own
// counters (announcements in/out, fetches, failures, duplicates, bytes per
// protocol) through relay.NewMetrics on the same registry.
func (n *Node) registerNodeMetrics() {
	reg := n.registry
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "rumor", Name: name, Help: help}, f))
	}
	gauge("peers", "Connected libp2p peers.", func() float64 { return float64(len(n.host.Network().Peers())) })
	reg.MustRegister(newPeerScoreCollector(n))
	if n.store != nil {
		gauge("chain_height", "Height of the best block.", func() float64 { h, _ := n.store.Tip(); return float64(h.Height) })
		gauge("mempool_txs", "Transactions in the mempool, queued included.", func() float64 { return float64(n.pool.Stats().Count) })
		gauge("mempool_bytes", "Encoded bytes of the mempool's transactions.", func() float64 { return float64(n.pool.Stats().Bytes) })
		gauge("mempool_queued", "Mempool transactions waiting for a nonce gap.", func() float64 { return float64(n.pool.Stats().Queued) })
		if n.own != nil {
			gauge("own_txs_unconfirmed", "Transactions accepted over tx_send not yet held by enough peers (DeliveryConfirmPeers) nor mined.",
				func() float64 { return float64(n.own.Unconfirmed()) })
		}
	} else {
		gauge("chain_height", "Height of the best block.", func() float64 { h, _ := n.opts.chain.Tip(); return float64(h) })
	}
}

// peerScoreBuckets are the upper bounds of the peer-score histogram, in
// package peers' score units: from the default ban threshold (-200) through
// the weights of single offenses (-100 ... -2) to the reward cap (+20).
var peerScoreBuckets = []float64{-200, -100, -50, -20, -10, -5, -1, 0, 1, 5, 10, 20}

// peerMetrics counts what the peer policy does. Its methods are no-ops on a
// nil receiver (metrics off).
type peerMetrics struct {
	offenses *prometheus.CounterVec
	bans     prometheus.Counter
	drops    prometheus.Counter
}

func newPeerMetrics(reg prometheus.Registerer) *peerMetrics {
	m := &peerMetrics{
		offenses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rumor", Subsystem: "peer", Name: "offenses_total",
			Help: "Offenses scored against peers, by kind (package peers' names)."}, []string{"offense"}),
		bans: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "rumor", Subsystem: "peer", Name: "bans_total",
			Help: "Peers banned for crossing the ban threshold."}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "rumor", Subsystem: "peer", Name: "liveness_drops_total",
			Help: "Peers disconnected for not answering pings."}),
	}
	reg.MustRegister(m.offenses, m.bans, m.drops)
	return m
}

func (m *peerMetrics) offense(o peers.Offense) {
	if m != nil {
		m.offenses.WithLabelValues(o.String()).Inc()
	}
}

func (m *peerMetrics) ban() {
	if m != nil {
		m.bans.Inc()
	}
}

func (m *peerMetrics) livenessDrop() {
	if m != nil {
		m.drops.Inc()
	}
}

// peerScoreCollector exports, at scrape time, a histogram of the score-book
// scores of the connected peers and the number of bans in force.
type peerScoreCollector struct {
	n          *Node
	scores     *prometheus.Desc
	activeBans *prometheus.Desc
}

func newPeerScoreCollector(n *Node) *peerScoreCollector {
	return &peerScoreCollector{
		n: n,
		scores: prometheus.NewDesc("rumor_peer_score", "Score-book scores of the connected peers (0 = fresh, ban at the ban threshold).",
			nil, nil),
		activeBans: prometheus.NewDesc("rumor_peer_bans", "Bans in force.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *peerScoreCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.scores
	ch <- c.activeBans
}

// Collect implements prometheus.Collector.
func (c *peerScoreCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	buckets := make(map[float64]uint64, len(peerScoreBuckets))
	var count uint64
	var sum float64
	for _, p := range c.n.host.Network().Peers() {
		s := c.n.peers.book.Score(p, now)
		count++
		sum += s
		for _, b := range peerScoreBuckets {
			if s <= b {
				buckets[b]++
			}
		}
	}
	ch <- prometheus.MustNewConstHistogram(c.scores, count, sum, buckets)
	ch <- prometheus.MustNewConstMetric(c.activeBans, prometheus.GaugeValue, float64(len(c.n.peers.bans.List(now))))
}
