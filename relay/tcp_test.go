package relay

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestTCPLoopback runs four relays on real libp2p hosts (TCP, Noise,
// Yamux) over loopback in a line 0-1-2-3: a tx reaches every pool, a
// compact block from node 0 and a pull-mode block from node 3 reach every
// chain, and a push-mode block from node 1 too.
func TestTCPLoopback(t *testing.T) {
	const n = 4
	modes := []BlockMode{BlockCompact, BlockPush, BlockCompact, BlockPull}
	nodes := make([]*tnode, n)
	for i := range nodes {
		h, err := libp2p.New(
			libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.DisableRelay(),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		nodes[i] = newNode(t, h, testConfig(modes[i]))
	}
	ctx := waitCtx(t, 30*time.Second)
	for i := 1; i < n; i++ {
		if err := dial(ctx, nodes[i].h, nodes[i-1].h); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		if err := nd.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	waitMesh(t, nodes)

	var txs [][]byte
	var ids []ID
	for i := range 10 {
		tx := mkTx("tcp", i, 300)
		if _, v, err := nodes[i%n].r.SubmitTx(tx); v != Accepted {
			t.Fatal(v, err)
		}
		txs = append(txs, tx)
		ids = append(ids, txID(tx))
	}
	waitPools(t, ctx, nodes, ids)

	publish := func(prod *tnode, salt uint64, txs [][]byte) ID {
		t.Helper()
		b, id := prod.chain.build(salt, txs)
		if _, v, err := prod.chain.AddBlock(b); v != Accepted {
			t.Fatal(v, err)
		}
		if err := prod.r.PublishBlock(b); err != nil {
			t.Fatal(err)
		}
		return id
	}
	b1 := publish(nodes[0], 1, txs[:5])
	waitBlocks(t, ctx, nodes, b1)
	b2 := publish(nodes[3], 2, txs[5:])
	waitBlocks(t, ctx, nodes, b2)
	b3 := publish(nodes[1], 3, [][]byte{mkTx("tcp-push", 0, 500)})
	waitBlocks(t, ctx, nodes, b3)
	for i, nd := range nodes {
		if h, tip := nd.chain.Tip(); h != 3 || tip != b3 {
			t.Fatalf("node %d at height %d", i, h)
		}
	}
}

func dial(ctx context.Context, from, to host.Host) error {
	return from.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()})
}
