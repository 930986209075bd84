package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/relay"
)

// simCluster runs every node in this process on go-libp2p's mock network.
//
// What the nodes share, and how it biases the numbers: one OS process,
// so one Go scheduler and GOMAXPROCS CPUs for all N nodes, one garbage
// collector and one clock. The shared clock makes first-seen times exactly
// comparable (no skew). The shared CPUs are the bias: every node verifies
// every tx signature (in its mempool and again in each block) and every
// GossipSub message signature, so N nodes at R tx/s cost about 2*N*R
// ed25519 verifications per second of the same cores (100 nodes at 20
// tx/s: 4000/s). Work queues behind other nodes' work, so measured times
// include CPU queueing that N separate machines would not have: they are
// upper bounds on the relay's share, and the error grows with N*R. The
// network part is ideal: links add exactly the injected one-way latency
// (pipelined, see delay.go) and the optional bandwidth delay, with no
// loss, jitter, congestion control or handshake round trips. The ratio of
// block time to all to floor_ms shows what the relay and the shared CPU
// add to the pure latency floor.
//
// In virtual time (Config.VirtualTime, the default of `rumor testnet --mode
// sim`) the whole run is inside a testing/synctest bubble: time advances
// only when every goroutine of every node is blocked, so the host's CPUs
// cost no time at all and the shared-CPU bias above is gone. Work that
// takes time on a real node is charged instead through node.CPUModel, per
// node. Nothing in the bubble may wait on a real socket: the nodes serve
// JSON-RPC in process (node.WithInProcessRPC) and the workload's HTTP
// client calls their handlers directly (inProcTransport).
type simCluster struct {
	mn        mocknet.Mocknet
	nodes     []*node.Node
	endpoints []string
	client    *http.Client
	closeOnce sync.Once
	closeErr  error
}

func (sc *simCluster) Endpoints() []string { return sc.endpoints }

// HTTPClient reaches the nodes' in-process RPC handlers.
func (sc *simCluster) HTTPClient() *http.Client { return sc.client }

// inProcTransport serves an HTTP request with the handler of the node its
// URL names (http://node-<i>/), in this goroutine: no socket, so it works
// inside a synctest bubble.
type inProcTransport struct{ sc *simCluster }

func (t inProcTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var i int
	if _, err := fmt.Sscanf(req.URL.Host, "node-%d", &i); err != nil || i < 0 || i >= len(t.sc.nodes) {
		return nil, fmt.Errorf("sim: no node %q", req.URL.Host)
	}
	h := t.sc.nodes[i].RPCHandler()
	if h == nil {
		return nil, fmt.Errorf("sim: node %d serves no RPC", i)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// Err is always nil: in-process nodes cannot die without taking the
// testnet with them.
func (sc *simCluster) Err() error { return nil }

// Close stops every node and the mock network.
func (sc *simCluster) Close() error {
	sc.closeOnce.Do(func() {
		var errs []error
		for i, n := range sc.nodes {
			if err := n.Close(); err != nil {
				errs = append(errs, fmt.Errorf("node %d: %w", i, err))
			}
		}
		// Nodes do not close hosts they were given (WithHost); the mock
		// network's Close closes only the networks.
		for _, h := range sc.mn.Hosts() {
			errs = append(errs, h.Close())
		}
		errs = append(errs, sc.mn.Close())
		sc.closeErr = errors.Join(errs...)
	})
	return sc.closeErr
}

// startSim builds the mock network (every pair linked, so any node may
// dial any other; one-way latency cfg.Latency on every stream, bandwidth
// cfg.Bandwidth per link) and starts the nodes with in-memory stores and
// in-process JSON-RPC, which the workload drives as it drives process mode
// over HTTP. Nodes start in order; each gets the addresses of up to
// cfg.BootstrapPeers random earlier nodes (drawn from cfg.Seed), so the
// overlay is a random graph, not a star around node 0.
func startSim(ctx context.Context, cfg *Config, g *chain.Genesis) (*simCluster, error) {
	mn := mocknet.New()
	if cfg.VirtualTime {
		// mocknet delays each write by the link latency on its own timers,
		// which virtual time makes exact; delayHost's pumps would outlive
		// the bubble.
		mn.SetLinkDefaults(mocknet.LinkOptions{Latency: cfg.Latency, Bandwidth: cfg.Bandwidth})
	} else {
		// Zero mocknet latency: delayHost adds it, pipelined (see delay.go).
		mn.SetLinkDefaults(mocknet.LinkOptions{Bandwidth: cfg.Bandwidth})
	}
	sc := &simCluster{mn: mn, endpoints: make([]string, cfg.Nodes)}
	sc.client = &http.Client{Transport: inProcTransport{sc}}
	rng := mrand.New(mrand.NewPCG(seed64(cfg.Seed), 1))
	nboot := cfg.BootstrapPeers
	if nboot <= 0 {
		nboot = 3
	}
	var cpu *node.CPUModel
	if cfg.VirtualTime {
		m := node.DefaultCPUModel()
		if cfg.CPU != nil {
			m = *cfg.CPU
		}
		cpu = &m
	}
	for range cfg.Nodes {
		if err := addSimPeer(mn); err != nil {
			_ = mn.Close()
			return nil, fmt.Errorf("mocknet peer: %w", err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		_ = mn.Close()
		return nil, fmt.Errorf("mocknet links: %w", err)
	}
	hosts := mn.Hosts() // sorted by peer id
	fail := func(err error) (*simCluster, error) {
		_ = sc.Close()
		return nil, err
	}
	var addrs []string // each started node's address
	for i, h := range hosts {
		nc := node.DefaultConfig()
		nc.DataDir = ""
		nc.InMemory = true
		nc.Genesis = g
		nc.ListenAddrs = nil
		nc.MDNS = false
		// Mocknet gives every node an address in one IPv6 /64, which
		// GossipSub counts as one IP: colocation scoring would graylist
		// everyone.
		nc.ColocationThreshold = -1
		nc.RPCAddr = ""
		nc.MetricsAddr = ""
		nc.BlockRelay = relay.BlockMode(cfg.BlockRelay)
		for _, j := range rng.Perm(len(addrs))[:min(nboot, len(addrs))] {
			nc.Bootstrap = append(nc.Bootstrap, addrs[j])
		}
		if i < cfg.Authorities {
			nc.ProducerKey = chain.TestnetAuthorityKey(cfg.Seed, i)
		}
		host := h
		if !cfg.VirtualTime {
			host = newDelayHost(h, cfg.Latency)
		}
		opts := []node.Option{node.WithHost(host), node.WithInProcessRPC()}
		if cpu != nil {
			opts = append(opts, node.WithCPUModel(*cpu))
		}
		n, err := node.New(nc, opts...)
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		sc.nodes = append(sc.nodes, n)
		if err := n.Start(ctx); err != nil {
			return fail(fmt.Errorf("node %d start: %w", i, err))
		}
		sc.endpoints[i] = fmt.Sprintf("http://node-%d/", i)
		addrs = append(addrs, n.Addrs()[0].String())
	}
	return sc, nil
}

// addSimPeer adds a peer with an Ed25519 identity, like a real rumor node
// (mocknet's GenPeer makes ECDSA keys, whose GossipSub signature checks
// cost several times more CPU), at a unique fake address in mocknet's
// blackhole range 100::/64.
func addSimPeer(mn mocknet.Mocknet) error {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return err
	}
	ip := make(net.IP, net.IPv6len)
	ip[0] = 1 // 100::
	suffix := []byte(id)
	copy(ip[8:], suffix[len(suffix)-8:])
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip6/%s/tcp/4242", ip))
	if err != nil {
		return err
	}
	_, err = mn.AddPeer(sk, addr)
	return err
}
