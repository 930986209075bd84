package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/mempool"
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
// network part is ideal: links add exactly their one-way latency
// (pipelined) and each node's access bandwidth its serialization delay
// (see linkModel in delay.go), with no loss, jitter, congestion control
// or handshake round trips; Config.Retransmit and Config.Loss add
// retransmissions and lost gossip. The ratio of
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
	links     *linkModel
	latency   func(i, j int) time.Duration // the links' one-way latency by node index
	specs     []simNodeSpec                // how each node is made, for restarts
	endpoints []string

	mu    sync.Mutex
	nodes []*node.Node // the node's current life; nil while it is down (churn)

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
	if _, err := fmt.Sscanf(req.URL.Host, "node-%d", &i); err != nil || i < 0 || i >= len(t.sc.specs) {
		return nil, fmt.Errorf("sim: no node %q", req.URL.Host)
	}
	n := t.sc.node(i)
	if n == nil {
		// A transport error, as a refused connection would be: the
		// workload sends the tx to another node.
		return nil, fmt.Errorf("sim: node %d is down", i)
	}
	h := n.RPCHandler()
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
		// Streams first: data still in flight must not hold readers.
		sc.links.close()
		var errs []error
		sc.mu.Lock()
		nodes := append([]*node.Node(nil), sc.nodes...)
		sc.mu.Unlock()
		for i, n := range nodes {
			if n == nil {
				continue // down (churn)
			}
			if err := n.Close(); err != nil {
				errs = append(errs, fmt.Errorf("node %d: %w", i, err))
			}
		}
		for _, sp := range sc.specs {
			if sp.dir != nil {
				errs = append(errs, sp.dir.Close())
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

// startSim builds the simulated network and starts the nodes on it with
// in-memory stores and in-process JSON-RPC, which the workload drives as
// it drives process mode over HTTP. Every pair of nodes is linked (any
// node may dial any other) with mocknet's zero-latency links; delayHost
// adds each link's one-way latency (cfg.Latency, or drawn per link from
// cfg.Latency..cfg.LatencyMax) and each node's bandwidth (cfg.Bandwidth,
// shared by all its streams), see linkModel. Nodes start in order; each
// gets the addresses of up to cfg.BootstrapPeers random earlier nodes, so
// the overlay is a random graph, not a star around node 0. Keys, links
// and bootstrap choices all come from cfg.Seed.
func startSim(ctx context.Context, cfg *Config, g *chain.Genesis) (*simCluster, error) {
	mn := newSimMocknet()
	sc := &simCluster{mn: mn, endpoints: make([]string, cfg.Nodes)}
	sc.client = &http.Client{Transport: inProcTransport{sc}}
	rng := mrand.New(mrand.NewPCG(seed64(cfg.Seed), 1))
	keys := mrand.NewChaCha8(seedBytes(cfg.Seed, "peer-keys"))
	nboot := cfg.BootstrapPeers
	if nboot <= 0 {
		nboot = 3
	}
	// One signature cache for all nodes: the host verifies each tx once;
	// each node still pays its modelled verification time.
	sigs := mempool.NewSigCache(simSigCacheSize)
	var cpu *node.CPUModel
	if cfg.VirtualTime {
		m := node.DefaultCPUModel()
		if cfg.CPU != nil {
			m = *cfg.CPU
		}
		cpu = &m
	}
	idKeys := make(map[peer.ID]simKey, cfg.Nodes)
	for range cfg.Nodes {
		k, err := addSimPeer(mn, keys)
		if err != nil {
			_ = mn.Close()
			return nil, fmt.Errorf("mocknet peer: %w", err)
		}
		idKeys[k.id] = k
	}
	if err := mn.LinkAll(); err != nil {
		_ = mn.Close()
		return nil, fmt.Errorf("mocknet links: %w", err)
	}
	hosts := mn.Hosts() // sorted by peer id
	index := make(map[peer.ID]int, len(hosts))
	for i, h := range hosts {
		index[h.ID()] = i
	}
	sc.latency = linkLatencies(cfg)
	sc.links = newLinkModel(func(a, b peer.ID) time.Duration { return sc.latency(index[a], index[b]) }, cfg.Bandwidth)
	sc.links.loss, sc.links.lossSeed = cfg.Retransmit, seed64(cfg.Seed+"/loss")
	if cfg.VirtualTime {
		sc.links.tick = simTick
	}
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
		nc.TxRelay = relay.TxMode(cfg.txRelay())
		nc.PrefillAge = cfg.PrefillAge
		nc.MeshDegree = cfg.MeshDegree
		for _, j := range rng.Perm(len(addrs))[:min(nboot, len(addrs))] {
			nc.Bootstrap = append(nc.Bootstrap, addrs[j])
		}
		if i < cfg.Authorities {
			nc.ProducerKey = chain.TestnetAuthorityKey(cfg.Seed, i)
		}
		opts := []node.Option{node.WithInProcessRPC(), node.WithSharedSigCache(sigs),
			node.WithGossipTopics(probeTopic)} // the self-check's topic
		if cpu != nil {
			opts = append(opts, node.WithCPUModel(*cpu))
		}
		if cfg.NoReconcile {
			opts = append(opts, node.WithRelayConfig(func(c *relay.Config) { c.NoReconcile = true }))
		}
		if cfg.Loss > 0 {
			opts = append(opts, node.WithMessageLoss(cfg.Loss, seed64(fmt.Sprintf("%s/drop/%d", cfg.Seed, i))))
		}
		sp := simNodeSpec{key: idKeys[h.ID()], cfg: nc, opts: opts}
		if cfg.Churn > 0 {
			// A crashed node restarts on its chain and own-tx journal,
			// kept in memory as a data dir on disk would be.
			dir, err := node.NewMemDataDir(g)
			if err != nil {
				return fail(fmt.Errorf("node %d: %w", i, err))
			}
			sp.dir = dir
			sp.cfg.Mempool.JournalPath = node.DefaultJournalFile
			sp.opts = append(sp.opts, node.WithMemDataDir(dir))
		}
		sc.specs = append(sc.specs, sp)
		sc.nodes = append(sc.nodes, nil)
		n, err := sp.start(ctx, h, sc.links)
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		sc.nodes[i] = n
		sc.endpoints[i] = fmt.Sprintf("http://node-%d/", i)
		addrs = append(addrs, n.Addrs()[0].String())
	}
	return sc, nil
}

// simTick is the resolution of arrivals on the sim's links in virtual
// time: each chunk arrives on the first 100 µs boundary at or after its
// exact arrival. A synctest bubble advances the clock to the next timer
// only once every goroutine is blocked, so each distinct arrival instant
// is a round of the whole simulation: with nanosecond arrivals almost
// every message delivery was a round of its own, run by one or two
// goroutines while the other core idled. On the tick, deliveries due
// within the same 100 µs run as one round in parallel. The cost is at most
// one tick per hop: 0.5 ms over five hops, 0.3% of a 150 ms floor.
const simTick = 100 * time.Microsecond

// simSigCacheSize bounds the sim's shared signature cache: 256Ki ids
// (about 25 MB) cover 87 minutes of 50 tx/s.
const simSigCacheSize = 1 << 18

// simKey is a sim node's identity and address, which it keeps across
// restarts.
type simKey struct {
	id   peer.ID
	sk   crypto.PrivKey
	addr ma.Multiaddr
}

// simNodeSpec is how a sim node is made: its identity, config and options
// (all but its host), and its memory data dir when it may crash (churn).
type simNodeSpec struct {
	key  simKey
	cfg  node.Config
	opts []node.Option
	dir  *node.MemDataDir
}

// start makes and starts a node of the spec on host h.
func (sp *simNodeSpec) start(ctx context.Context, h host.Host, links *linkModel) (*node.Node, error) {
	n, err := node.New(sp.cfg, append([]node.Option{node.WithHost(newDelayHost(h, links))}, sp.opts...)...)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	return n, nil
}

// node returns node i's current life; nil while it is down.
func (sc *simCluster) node(i int) *node.Node {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.nodes[i]
}

// crash takes node i down at once, as a killed process goes: every link
// to it is cut first (no peer reaches it, none can dial it, nothing it
// had queued is delivered), then the node and its host are closed, which
// loses its memory (pool, scores, first-seen times) but not its memory
// data dir. The restarter makes a new host with the same key and address,
// links it to every node again and starts a new node on the data dir,
// bootstrapping from the same peers as the first life.
func (sc *simCluster) crash(i int) (restarter, error) {
	sc.mu.Lock()
	n := sc.nodes[i]
	if n == nil {
		sc.mu.Unlock()
		return nil, fmt.Errorf("sim: node %d is already down", i)
	}
	sc.nodes[i] = nil
	sc.mu.Unlock()
	sp := &sc.specs[i]
	id := sp.key.id
	for _, other := range sc.mn.Peers() {
		if other != id {
			_ = sc.mn.UnlinkPeers(id, other)
			_ = sc.mn.DisconnectPeers(id, other)
		}
	}
	h := sc.mn.Host(id)
	if err := n.Close(); err != nil {
		log.Warnf("sim: node %d close at its crash: %v", i, err)
	}
	_ = h.Close()
	return func(ctx context.Context) (int, time.Time, error) {
		started := time.Now()
		h, err := sc.mn.AddPeer(sp.key.sk, sp.key.addr)
		if err != nil {
			return 1, started, fmt.Errorf("mocknet peer: %w", err)
		}
		for _, other := range sc.mn.Peers() {
			if other != id {
				if _, err := sc.mn.LinkPeers(id, other); err != nil {
					return 1, started, fmt.Errorf("mocknet link: %w", err)
				}
			}
		}
		n, err := sp.start(ctx, h, sc.links)
		if err != nil {
			_ = h.Close()
			return 1, started, err
		}
		sc.mu.Lock()
		sc.nodes[i] = n
		sc.mu.Unlock()
		return 1, started, nil
	}, nil
}

// addSimPeer adds a peer with an Ed25519 identity drawn from keys, like a real rumor node
// (mocknet's GenPeer makes ECDSA keys, whose GossipSub signature checks
// cost several times more CPU), at a unique fake address in mocknet's
// blackhole range 100::/64.
func addSimPeer(mn mocknet.Mocknet, keys io.Reader) (simKey, error) {
	sk, _, err := crypto.GenerateEd25519Key(keys)
	if err != nil {
		return simKey{}, err
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return simKey{}, err
	}
	ip := make(net.IP, net.IPv6len)
	ip[0] = 1 // 100::
	suffix := []byte(id)
	copy(ip[8:], suffix[len(suffix)-8:])
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip6/%s/tcp/4242", ip))
	if err != nil {
		return simKey{}, err
	}
	if _, err = mn.AddPeer(sk, addr); err != nil {
		return simKey{}, err
	}
	return simKey{id: id, sk: sk, addr: addr}, nil
}

// linkLatencies returns the one-way latency of each link by node index:
// cfg.Latency everywhere, or, when cfg.LatencyMax is above it, a value
// drawn uniformly from cfg.Latency..cfg.LatencyMax per link, the same in
// both directions, from the seed (a hash of the seed and the pair, so it
// costs no memory at 1000 nodes).
func linkLatencies(cfg *Config) func(i, j int) time.Duration {
	lo, hi := cfg.Latency, cfg.LatencyMax
	if hi <= lo {
		return func(int, int) time.Duration { return lo }
	}
	base := seed64(cfg.Seed + "/links")
	span := uint64(hi-lo) + 1
	return func(i, j int) time.Duration {
		if i > j {
			i, j = j, i
		}
		h := splitmix64(base ^ uint64(i)<<32 ^ uint64(j))
		return lo + time.Duration(h%span)
	}
}

// splitmix64 is a 64-bit mixing function (SplitMix64's finaliser).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// raceMocknetLatency is the latency mocknet itself adds to every write in
// a binary built with the race detector; otherwise it adds none (the link
// model adds the real latency, see delayHost). With no latency, mocknet's
// stream goroutines arm zero-length timers, and under the race detector a
// synctest bubble then crashes inside the runtime's timer code (Go 1.26,
// runtime.(*timer).maybeRunChan, about one run in two); a timer due 1 ns
// later takes the ordinary path. Not always 1 ns: such a timer fires only
// once the whole bubble is idle, which cost a 1000-node sim a third of its
// speed.
const raceMocknetLatency = time.Nanosecond

// newSimMocknet returns a mock network for the sim's hosts.
func newSimMocknet() mocknet.Mocknet {
	mn := mocknet.New()
	if raceDetector {
		mn.SetLinkDefaults(mocknet.LinkOptions{Latency: raceMocknetLatency})
	}
	return mn
}
