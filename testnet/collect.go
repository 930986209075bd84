package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// rpcParallelism bounds concurrent RPC calls when the testnet queries all
// nodes at once (100 nodes in sim mode): enough to overlap round trips,
// few enough not to starve the nodes of the CPU they share.
const rpcParallelism = 16

// forEachNode runs fn for node indexes 0..n-1 with at most rpcParallelism
// at a time and returns the errors joined.
func forEachNode(n int, fn func(i int) error) error {
	sem := make(chan struct{}, rpcParallelism)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// collector gathers first-seen times, the chain and the heads from every
// node. Only the goroutine running Run uses it.
type collector struct {
	clients   []*rpcclient.Client
	authority map[chain.Address]int // proposer address -> node index
	txSeen    []map[chain.Hash]int64
	blockSeen []map[chain.Hash]int64
	blocks    []BlockObs // the reference node's best chain from height 1, in order
	heads     []HeadObs
	ref       int // reference node: the highest tip at the last readHeads
}

func newCollector(clients []*rpcclient.Client, authority map[chain.Address]int) *collector {
	c := &collector{clients: clients, authority: authority}
	c.txSeen = make([]map[chain.Hash]int64, len(clients))
	c.blockSeen = make([]map[chain.Hash]int64, len(clients))
	for i := range clients {
		c.txSeen[i] = make(map[chain.Hash]int64)
		c.blockSeen[i] = make(map[chain.Hash]int64)
	}
	return c
}

// walk extends c.blocks along the reference node's best chain up to its
// tip, first dropping blocks a reorg (or a change of reference node)
// replaced. The reference is the node with the highest tip, so one node
// that fell behind cannot hide the blocks everyone else has.
func (c *collector) walk(ctx context.Context) error {
	cl := c.clients[c.ref]
	for len(c.blocks) > 0 {
		last := c.blocks[len(c.blocks)-1]
		b, err := cl.BlockByHeight(ctx, last.Height)
		if err == nil && b.ID == last.ID {
			break
		}
		c.blocks = c.blocks[:len(c.blocks)-1]
	}
	head, err := cl.ChainHead(ctx)
	if err != nil {
		return fmt.Errorf("node %d chain_head: %w", c.ref, err)
	}
	for h := uint64(len(c.blocks)) + 1; h <= head.Height; h++ {
		b, err := cl.BlockByHeight(ctx, h)
		if err != nil {
			return fmt.Errorf("node %d chain_blockByHeight %d: %w", c.ref, h, err)
		}
		origin, ok := c.authority[b.Header.Proposer]
		if !ok {
			return fmt.Errorf("block %d proposer %s is no testnet node's key", h, b.Header.Proposer)
		}
		c.blocks = append(c.blocks, BlockObs{
			ID:       b.ID,
			Height:   h,
			Origin:   origin,
			HeaderUs: b.Header.TimeMs * 1000,
			Txs:      b.Txs,
		})
	}
	return nil
}

// originUs returns a block's production time: first seen at its proposer,
// or its header time when the proposer does not know.
func (c *collector) originUs(b *BlockObs) int64 {
	if t := c.blockSeen[b.Origin][b.ID]; t != 0 {
		return t
	}
	return b.HeaderUs
}

// markWindow sets InWindow on blocks produced in [from, to].
func (c *collector) markWindow(from, to time.Time) {
	for i := range c.blocks {
		t := c.originUs(&c.blocks[i])
		c.blocks[i].InWindow = t >= from.UnixMicro() && t <= to.UnixMicro()
	}
}

// pollMissing asks every node for the first-seen times of the txs and
// walked blocks it has not reported yet. A tx counts as known at a node
// once the block that carried it is.
func (c *collector) pollMissing(ctx context.Context, txs []TxObs) error {
	txBlock := make(map[chain.Hash]chain.Hash)
	for _, b := range c.blocks {
		for _, id := range b.Txs {
			txBlock[id] = b.ID
		}
	}
	return forEachNode(len(c.clients), func(i int) error {
		var qt, qb []chain.Hash
		for _, b := range c.blocks {
			if _, ok := c.blockSeen[i][b.ID]; !ok {
				qb = append(qb, b.ID)
			}
		}
		for _, tx := range txs {
			if _, ok := c.txSeen[i][tx.ID]; ok {
				continue
			}
			if blk, ok := txBlock[tx.ID]; ok && tx.Origin != i {
				if _, ok := c.blockSeen[i][blk]; ok {
					continue // known via its block; no need to ask
				}
			}
			qt = append(qt, tx.ID)
		}
		if len(qt) == 0 && len(qb) == 0 {
			return nil
		}
		fs, err := c.clients[i].FirstSeenTimes(ctx, qt, qb)
		if err != nil {
			return fmt.Errorf("node %d measure_firstSeen: %w", i, err)
		}
		for k, v := range fs.Txs {
			c.txSeen[i][k] = v
		}
		for k, v := range fs.Blocks {
			c.blockSeen[i][k] = v
		}
		return nil
	})
}

// complete reports whether every tx and every in-window block is known at
// every node.
func (c *collector) complete(txs []TxObs) bool {
	txBlock := make(map[chain.Hash]chain.Hash)
	for _, b := range c.blocks {
		for _, id := range b.Txs {
			txBlock[id] = b.ID
		}
		if !b.InWindow {
			continue
		}
		for i := range c.clients {
			if _, ok := c.blockSeen[i][b.ID]; !ok {
				return false
			}
		}
	}
	for _, tx := range txs {
		for i := range c.clients {
			if _, ok := c.txSeen[i][tx.ID]; ok {
				continue
			}
			if blk, ok := txBlock[tx.ID]; ok {
				if _, ok := c.blockSeen[i][blk]; ok {
					continue
				}
			}
			return false
		}
	}
	return true
}

// readHeads asks every node for its chain head; a node that does not
// answer gets a zero HeadObs. It picks the reference node for walk (the
// highest answering tip, lowest index on ties) and reports whether all
// nodes agree.
func (c *collector) readHeads(ctx context.Context) bool {
	c.heads = make([]HeadObs, len(c.clients))
	_ = forEachNode(len(c.clients), func(i int) error {
		h, err := c.clients[i].ChainHead(ctx)
		if err == nil {
			c.heads[i] = HeadObs{Height: h.Height, ID: h.ID}
		}
		return nil
	})
	best := -1
	for i, h := range c.heads {
		if !h.ID.IsZero() && (best < 0 || h.Height > c.heads[best].Height) {
			best = i
		}
	}
	if best >= 0 {
		c.ref = best
	}
	for _, h := range c.heads {
		if h.ID.IsZero() || h.ID != c.heads[0].ID {
			return false
		}
	}
	return true
}

// readStats returns every node's relay counters.
func readStats(ctx context.Context, clients []*rpcclient.Client) ([]Stats, error) {
	out := make([]Stats, len(clients))
	err := forEachNode(len(clients), func(i int) error {
		raw, err := clients[i].Stats(ctx)
		if err != nil {
			return fmt.Errorf("node %d measure_stats: %w", i, err)
		}
		out[i], err = ParseStats(raw)
		if err != nil {
			return fmt.Errorf("node %d measure_stats: %w", i, err)
		}
		return nil
	})
	return out, err
}

// readGraph returns the connection graph from every node's net_peers,
// as adjacency lists by node index. A connection reported by either end
// counts (the graph is undirected); peers outside the testnet are ignored.
func readGraph(ctx context.Context, clients []*rpcclient.Client, peerIDs []string) ([][]int, error) {
	peers := make([][]string, len(clients))
	err := forEachNode(len(clients), func(i int) error {
		ps, err := clients[i].Peers(ctx)
		if err != nil {
			return fmt.Errorf("node %d net_peers: %w", i, err)
		}
		for _, p := range ps {
			peers[i] = append(peers[i], p.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return BuildGraph(peerIDs, peers), nil
}

// readMeshes returns the tx and block topic meshes (topics named by rc)
// from every node's net_mesh, as directed adjacency lists by node index
// (u -> v when u forwards the topic to v).
func readMeshes(ctx context.Context, clients []*rpcclient.Client, peerIDs []string, rc relay.Config) (tx, block [][]int, err error) {
	meshes := make([]map[string][]string, len(clients))
	err = forEachNode(len(clients), func(i int) error {
		m, err := clients[i].Mesh(ctx)
		if err != nil {
			return fmt.Errorf("node %d net_mesh: %w", i, err)
		}
		meshes[i] = m
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	index := nodeIndex(peerIDs)
	build := func(topic string) [][]int {
		adj := make([][]int, len(peerIDs))
		for i, m := range meshes {
			adj[i] = []int{}
			for _, p := range m[topic] {
				if j, ok := index[p]; ok && j != i {
					adj[i] = append(adj[i], j)
				}
			}
		}
		return adj
	}
	return build(rc.TxTopic()), build(rc.BlockTopic()), nil
}

// nodeIndex maps each node's peer id to its index.
func nodeIndex(peerIDs []string) map[string]int {
	index := make(map[string]int, len(peerIDs))
	for i, id := range peerIDs {
		index[id] = i
	}
	return index
}

// BuildGraph turns per-node peer id lists into undirected adjacency lists
// by node index. peerIDs[i] is node i's own id; unknown ids and self
// loops are dropped; each edge appears once per endpoint.
func BuildGraph(peerIDs []string, peers [][]string) [][]int {
	index := nodeIndex(peerIDs)
	set := make([]map[int]bool, len(peerIDs))
	for i := range set {
		set[i] = make(map[int]bool)
	}
	for i, ps := range peers {
		if i >= len(peerIDs) {
			break
		}
		for _, p := range ps {
			j, ok := index[p]
			if !ok || j == i {
				continue
			}
			set[i][j] = true
			set[j][i] = true
		}
	}
	adj := make([][]int, len(peerIDs))
	for i, s := range set {
		adj[i] = []int{}
		for j := range len(peerIDs) {
			if s[j] {
				adj[i] = append(adj[i], j)
			}
		}
	}
	return adj
}

// ParseStats reads the counters the report needs from a measure_stats
// result (relay.Stats as JSON: bytes_in, bytes_out, bodies_received,
// duplicate_bodies, and classes.announce.in / classes.body.in). A missing
// field reads as zero, so a node with fewer counters still yields a report.
func ParseStats(raw json.RawMessage) (Stats, error) {
	type inOut struct {
		In  int64 `json:"in"`
		Out int64 `json:"out"`
	}
	var v struct {
		BytesIn         int64            `json:"bytes_in"`
		BytesOut        int64            `json:"bytes_out"`
		BodiesReceived  int64            `json:"bodies_received"`
		DuplicateBodies int64            `json:"duplicate_bodies"`
		BlockBytesIn    int64            `json:"block_bytes_in"`
		TxAnnounceIn    int64            `json:"tx_announce_bytes_in"`
		TxBodyIn        int64            `json:"tx_body_bytes_in"`
		TxAnnounceWire  int64            `json:"tx_announce_wire_bytes_in"`
		BlockTxnNeeded  int64            `json:"block_txn_needed"`
		BlockTxnPool    int64            `json:"block_txn_from_pool"`
		Classes         map[string]inOut `json:"classes"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return Stats{
		BytesIn:          v.BytesIn,
		BytesOut:         v.BytesOut,
		AnnounceBytesIn:  v.Classes["announce"].In,
		BodyBytesIn:      v.Classes["body"].In,
		ReconcileBytesIn: v.Classes["reconcile"].In,
		OverheadBytesIn:  v.Classes["overhead"].In,
		BlockBytesIn:     v.BlockBytesIn,
		TxAnnounceIn:     v.TxAnnounceIn,
		TxBodyIn:         v.TxBodyIn,
		TxAnnounceWireIn: v.TxAnnounceWire,
		BodiesReceived:   v.BodiesReceived,
		DuplicateBodies:  v.DuplicateBodies,
		BlockTxnNeeded:   v.BlockTxnNeeded,
		BlockTxnFromPool: v.BlockTxnPool,
	}, nil
}
