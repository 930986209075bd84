package relay_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/memnet"
	"github.com/rumor-relay/rumor/relay/relaytest"
)

// Three relays in a line A - B - C embed the relay in another chain
// (package relaytest: SHA3-256 tx ids, double SHA-256 block ids, its own
// limits) over the in-process transport, using the public API only. A tx
// and a compact block produced at A reach C through B.
func Example() {
	net := memnet.New(5 * time.Millisecond) // one-way latency of every link
	defer net.Close()

	type node struct {
		r     *relay.Relay
		chain *relaytest.Chain
		pool  *relaytest.Pool
	}
	var nodes []node
	for _, name := range []relay.PeerID{"A", "B", "C"} {
		pool := relaytest.NewPool()
		chain := relaytest.NewChain(pool)
		cfg := relay.DefaultConfig("example-chain")
		cfg.MaxTxBytes, cfg.MaxBlockBytes, cfg.MaxBlockTxs = relaytest.MaxTxBytes, relaytest.MaxBlockBytes, relaytest.MaxBlockTxs
		r, err := relay.New(net.Add(name), chain, pool, cfg)
		if err != nil {
			panic(err)
		}
		if err := r.Start(context.Background()); err != nil {
			panic(err)
		}
		defer r.Close()
		nodes = append(nodes, node{r, chain, pool})
	}
	net.Connect("A", "B")
	net.Connect("B", "C")
	a, c := nodes[0], nodes[2]

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx := []byte("a transfer in the example chain")
	id, verdict, err := a.r.SubmitTx(tx)
	fmt.Println("submitted at A:", verdict, err)
	err = c.pool.WaitFor(ctx, func() bool { return c.pool.HasTx(id) })
	fmt.Println("C holds it:", err == nil, id == relaytest.TxID(tx))

	block, bid := a.chain.Build(1, [][]byte{tx})
	if _, v, err := a.chain.AddBlock(block); v != relay.Accepted {
		panic(err)
	}
	if err := a.r.PublishBlock(block); err != nil {
		panic(err)
	}
	err = c.chain.WaitFor(ctx, func() bool { return c.chain.HasBlock(bid) })
	height, tip := c.chain.Tip()
	fmt.Println("C stored the block:", err == nil, height, tip == bid)
	// Output:
	// submitted at A: accepted <nil>
	// C holds it: true true
	// C stored the block: true 1 true
}
