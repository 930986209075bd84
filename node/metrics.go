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
)

// metricsShutdownTimeout bounds Close's wait for a scrape in flight.
const metricsShutdownTimeout = 5 * time.Second

// metricsServer serves /metrics (the node's own registry: relay, node and
// libp2p metrics, Go and process collectors) and /debug/pprof/ beside it.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

func startMetrics(addr string, reg *prometheus.Registry) (*metricsServer, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
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
// size and peer count (the relay exports mesh sizes per topic). The relay registers its own
// counters (announcements in/out, fetches, failures, duplicates, bytes per
// protocol) through relay.NewMetrics on the same registry.
func (n *Node) registerNodeMetrics() {
	reg := n.registry
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "rumor", Name: name, Help: help}, f))
	}
	gauge("peers", "Connected libp2p peers.", func() float64 { return float64(len(n.host.Network().Peers())) })
	if n.store != nil {
		gauge("chain_height", "Height of the best block.", func() float64 { h, _ := n.store.Tip(); return float64(h.Height) })
		gauge("mempool_txs", "Transactions in the mempool, queued included.", func() float64 { return float64(n.pool.Stats().Count) })
		gauge("mempool_bytes", "Encoded bytes of the mempool's transactions.", func() float64 { return float64(n.pool.Stats().Bytes) })
		gauge("mempool_queued", "Mempool transactions waiting for a nonce gap.", func() float64 { return float64(n.pool.Stats().Queued) })
	} else {
		gauge("chain_height", "Height of the best block.", func() float64 { h, _ := n.opts.chain.Tip(); return float64(h) })
	}
}
