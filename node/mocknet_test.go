package node

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rumor-relay/rumor/node/rpc"
)

// TestWithHostOnMocknet runs four nodes on go-libp2p's mock network (as a
// simulation would), each given only node 0's address: peer exchange
// connects them beyond the seed, and a tx and the block that includes it
// reach everyone.
func TestWithHostOnMocknet(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	const n = 4
	for range n {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	hosts := mn.Hosts()
	g := testGenesis(200 * time.Millisecond)
	nodes := make([]*Node, n)
	var seed []string
	for i, h := range hosts {
		cfg := testConfig(t, g)
		cfg.Bootstrap = seed
		if i == 0 {
			cfg.ProducerKey = authorityKey()
		}
		nodes[i] = startNode(t, cfg, WithHost(h))
		if i == 0 {
			for _, a := range nodes[0].Addrs() {
				seed = append(seed, a.String())
			}
		}
	}
	eventually(t, 20*time.Second, "every node connected beyond the seed", func() bool {
		for _, nd := range nodes[1:] {
			if len(nd.Host().Network().Peers()) < 2 {
				return false
			}
		}
		return true
	})
	eventually(t, 20*time.Second, "every node in both meshes", func() bool {
		for _, nd := range nodes {
			if tx, block := nd.MeshPeers(); len(tx) == 0 || len(block) == 0 {
				return false
			}
		}
		return true
	})
	heads := make([]<-chan any, n)
	for i, nd := range nodes {
		ch, cancel := nd.Feed().Subscribe(rpc.TopicNewHeads)
		t.Cleanup(cancel)
		heads[i] = ch
	}
	tx := signedTx(g, 1, 2, 0, 10, 0)
	if _, rerr := rpcCall(t, nodes[n-1].RPCAddr(), "tx_send", hex.EncodeToString(tx.Encode())); rerr != nil {
		t.Fatalf("tx_send: %+v", rerr)
	}
	for i, ch := range heads {
		waitEvent(t, ch, 20*time.Second, "the tx's block", func(any) bool {
			_, ok := nodes[i].Store().TxLocation(tx.ID())
			return ok
		})
	}
	// The node does not own a caller's host: it is still open after Close.
	if err := nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	if hosts[1].Network().Connectedness(hosts[0].ID()) != network.Connected {
		t.Fatal("node Close closed the caller's host")
	}
}
