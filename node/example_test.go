package node_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/relaytest"
)

// Two nodes on loopback run rumor's relay for another chain: package
// relaytest's, whose transactions are named by SHA3-256 (not rumor's
// SHA-256), whose blocks by double SHA-256 of the header, and whose limits
// are its own (256 KiB transactions, 1 MiB blocks). A transaction and a
// block produced at A reach B.
func ExampleWithChain() {
	start := func(c *relaytest.Chain, p *relaytest.Pool, bootstrap []string) *node.Node {
		cfg := node.DefaultConfig()
		cfg.ChainID = "my-chain"
		cfg.DataDir, cfg.InMemory = "", true // fresh identity, nothing on disk
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.MDNS = false
		cfg.RPCAddr = "" // no JSON-RPC server in this example
		cfg.Bootstrap = bootstrap
		n, err := node.New(cfg, node.WithChain(c, p), node.WithRelayConfig(func(rc *relay.Config) {
			rc.MaxTxBytes, rc.MaxBlockBytes, rc.MaxBlockTxs = relaytest.MaxTxBytes, relaytest.MaxBlockBytes, relaytest.MaxBlockTxs
		}))
		if err != nil {
			panic(err)
		}
		if err := n.Start(context.Background()); err != nil {
			panic(err)
		}
		return n
	}
	poolA, poolB := relaytest.NewPool(), relaytest.NewPool()
	chainA, chainB := relaytest.NewChain(poolA), relaytest.NewChain(poolB)
	a := start(chainA, poolA, nil)
	defer a.Close()
	var seed []string
	for _, addr := range a.Addrs() {
		seed = append(seed, addr.String())
	}
	b := start(chainB, poolB, seed)
	defer b.Close()

	// GossipSub grafts B into A's mesh a heartbeat after they connect; a
	// message published before then may miss B.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if tx, block := a.MeshPeers(); slices.Contains(tx, b.ID()) && slices.Contains(block, b.ID()) {
			break
		}
		<-tick.C
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tx := make([]byte, 200<<10) // over rumor's own 128 KiB limit
	copy(tx, "hello, rumor")
	id, verdict, err := a.Relay().SubmitTx(tx)
	if err != nil {
		panic(err)
	}
	fmt.Println("tx submitted to A:", verdict)
	err = poolB.WaitFor(ctx, func() bool { return poolB.HasTx(id) })
	fmt.Println("B holds the tx:", err == nil, id == relaytest.TxID(tx))

	block, bid := chainA.Build(1, [][]byte{tx})
	if _, v, err := chainA.AddBlock(block); v != relay.Accepted {
		panic(err)
	}
	if err := a.Relay().PublishBlock(block); err != nil {
		panic(err)
	}
	err = chainB.WaitFor(ctx, func() bool { return chainB.HasBlock(bid) })
	h, tip := chainB.Tip()
	fmt.Println("B stored the block:", err == nil, h, tip == bid)
	// Output:
	// tx submitted to A: accepted
	// B holds the tx: true true
	// B stored the block: true 1 true
}
