package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
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
type simCluster struct {
	mn        mocknet.Mocknet
	nodes     []*node.Node
	endpoints []string
	closeOnce sync.Once
	closeErr  error
}

func (sc *simCluster) Endpoints() []string { return sc.endpoints }

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
// cfg.Bandwidth per link) and starts the nodes with in-memory stores and RPC on
// 127.0.0.1:0. The workload drives them through that RPC, exactly as in
// process mode. Node 0 starts first; every other node gets only node 0's
// address as bootstrap.
func startSim(ctx context.Context, cfg *Config, g *chain.Genesis) (*simCluster, error) {
	mn := mocknet.New()
	// Zero mocknet latency: delayHost adds it, pipelined (see delay.go).
	mn.SetLinkDefaults(mocknet.LinkOptions{Bandwidth: cfg.Bandwidth})
	sc := &simCluster{mn: mn, endpoints: make([]string, cfg.Nodes)}
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
	var boot string
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
		nc.RPCAddr = "127.0.0.1:0"
		nc.MetricsAddr = ""
		nc.BlockRelay = relay.BlockMode(cfg.BlockRelay)
		if boot != "" {
			nc.Bootstrap = []string{boot}
		}
		if i < cfg.Authorities {
			nc.ProducerKey = chain.TestnetAuthorityKey(cfg.Seed, i)
		}
		n, err := node.New(nc, node.WithHost(newDelayHost(h, cfg.Latency)))
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		sc.nodes = append(sc.nodes, n)
		if err := n.Start(ctx); err != nil {
			return fail(fmt.Errorf("node %d start: %w", i, err))
		}
		sc.endpoints[i] = rpcclient.NormalizeURL(n.RPCAddr())
		if i == 0 {
			if boot, err = bootstrapAddr(ctx, rpcclient.New(sc.endpoints[0], nil)); err != nil {
				return fail(err)
			}
		}
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
