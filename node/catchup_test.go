package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/node/rpc"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/syncer"
)

// Node-level tests of sync (issue 4, "Sync (pull)"): a node restarted after
// missing hundreds of blocks catches up on its own, and a node joining a
// network with thousands of pending transactions pulls them from its peers'
// pools. Everything is real: libp2p hosts on loopback TCP, Badger stores on
// disk, the node's own mempool, producer and relay.

const catchupChainID = "rumor-catchup-test"

// catchupTipPoll is the tip exchange period of the catch-up test's nodes.
const catchupTipPoll = 2 * time.Second

// catchupConfig is a node on loopback TCP with an on-disk store in its own
// data dir, no RPC, no mDNS and no metrics.
func catchupConfig(t testing.TB, g *chain.Genesis, dir string, bootstrap ...*Node) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Genesis = g
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	cfg.RPCAddr = ""
	for _, b := range bootstrap {
		for _, a := range b.Addrs() {
			cfg.Bootstrap = append(cfg.Bootstrap, a.String())
		}
	}
	return cfg
}

// feedSource names one node's event topic to wake a wait on.
type feedSource struct {
	n     *Node
	topic string
}

// awaitCond returns once cond holds, re-evaluating it after each event of
// the given feeds (and once at the start); it fails the test after timeout.
// A feed that drops a slow subscriber is subscribed again, so no wake-up is
// lost: cond is always re-checked after the newest event.
func awaitCond(t testing.TB, timeout time.Duration, what string, cond func() bool, srcs ...feedSource) {
	t.Helper()
	if cond() {
		return
	}
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				ch, unsub := s.n.Feed().Subscribe(s.topic)
				select { // the subscription may have missed an event
				case wake <- struct{}{}:
				default:
				}
				func() {
					defer unsub()
					for {
						select {
						case <-ctx.Done():
							return
						case _, ok := <-ch:
							if !ok {
								return // dropped: subscribe again
							}
							select {
							case wake <- struct{}{}:
							default:
							}
						}
					}
				}()
			}
		}()
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

func heads(ns ...*Node) []feedSource {
	out := make([]feedSource, len(ns))
	for i, n := range ns {
		out[i] = feedSource{n, rpc.TopicNewHeads}
	}
	return out
}

func tipOf(n *Node) (uint64, chain.Hash) {
	h, id := n.Store().Tip()
	return h.Height, id
}

// followsChainOf reports whether x's tip, at least at height min, is a
// block of leader's best chain.
func followsChainOf(x, leader *Node, min uint64) bool {
	h, id := tipOf(x)
	lid, ok := leader.Store().BlockIDAt(h)
	return h >= min && ok && lid == id
}

func sameTip(a, b *Node) bool {
	_, ida := a.Store().Tip()
	_, idb := b.Store().Tip()
	return ida == idb
}

// catchupTx is a transfer of amount from testnet account from to the
// (unfunded at genesis) account to, so transfers create accounts as well as
// move balances.
func catchupTx(g *chain.Genesis, seed string, from, to int, nonce, amount uint64) *chain.Tx {
	k := chain.TestnetAccountKey(seed, from)
	tx := &chain.Tx{
		From:   chain.AddressOf(k),
		To:     chain.AddressOf(chain.TestnetAccountKey(seed, to)),
		Amount: amount,
		Fee:    chain.TestnetMinFee + uint64(from%7),
		Nonce:  nonce,
	}
	tx.Sign(g.ChainID, k)
	return tx
}

// TestRestartedNodeCatchesUp stops node C of a three-node network while the
// authority A produces 500 blocks carrying a few hundred transfers, restarts
// C on the same data dir with only B as its bootstrap peer, and checks that
// C, with no operator action, reaches A's tip (headers-first download from
// B, and from A once peer exchange finds it) and agrees with A on every
// touched account. Two cases: in "live" the producer keeps running during
// the catch-up, as a live network does, so gossiped new blocks race the
// download (it is stopped only at the end, so that "the same tip" is one
// fixed block); in "halted" the producer stops before C restarts, so no
// gossip announces anything and the download alone must fetch every block,
// the tail of a partial range included.
func TestRestartedNodeCatchesUp(t *testing.T) {
	t.Run("live", func(t *testing.T) { testRestartedNodeCatchesUp(t, false) })
	t.Run("halted", func(t *testing.T) { testRestartedNodeCatchesUp(t, true) })
}

func testRestartedNodeCatchesUp(t *testing.T, halt bool) {
	const seed = "catchup-seed"
	blocks := 500
	if testing.Short() {
		blocks = 100
	}
	const (
		senders = 64
		nonces  = 5 // senders × nonces = 320 transfers while C is down
		// recipient0 is the first recipient account index: accounts from
		// here on are not funded at genesis.
		recipient0 = 1000
		// interval is the slot length: 10 ms makes 500 blocks in ~5 s.
		interval = 10 * time.Millisecond
	)
	g := chain.NewTestnetGenesis(catchupChainID, seed, senders, 1, interval, time.Now())
	cfgA := catchupConfig(t, g, t.TempDir())
	cfgA.ProducerKey = chain.TestnetAuthorityKey(seed, 0)
	// At a 10 ms slot under -race on two cores a gossiped block can be
	// dropped (validation queue full, a body fetch that fails); the
	// periodic tip exchange is what repairs that, so it runs several
	// times within each wait below rather than once per 30 s.
	fastPoll := WithRelayConfig(func(c *relay.Config) { c.Sync.TipPollInterval = catchupTipPoll })
	a := startNode(t, cfgA, fastPoll)
	b := startNode(t, catchupConfig(t, g, t.TempDir(), a), fastPoll)
	dirC := t.TempDir()
	c := startNode(t, catchupConfig(t, g, dirC, a), fastPoll)

	// C follows the chain while up. (Not "on A's tip": at a 10 ms slot a
	// loaded machine may never see all three tips equal at one instant.)
	awaitCond(t, 20*time.Second, "B and C following A's chain", func() bool {
		return followsChainOf(b, a, 3) && followsChainOf(c, a, 3)
	}, heads(b, c)...)
	// A block may land on C between reading its tip and closing it: C
	// stops somewhere in [lo, stopHeight].
	lo, _ := tipOf(c)
	if err := c.Close(); err != nil {
		t.Fatalf("closing C: %v", err)
	}
	stopHeight, _ := tipOf(a)
	t.Logf("C stopped at height %d..%d", lo, stopHeight)

	// A produces blocks while transfers arrive at it in rounds: one nonce
	// of every sender per round, a round every blocks/10 heights.
	target := stopHeight + uint64(blocks)
	round := 0
	var submitted []chain.Hash
	submit := func() {
		for i := range senders {
			tx := catchupTx(g, seed, i, recipient0+(i+round)%senders, uint64(round), uint64(1000+i*round))
			if _, v, err := a.Relay().SubmitTx(tx.Encode()); v != relay.Accepted {
				t.Fatalf("submit tx %d/%d: %v %v", i, round, v, err)
			}
			submitted = append(submitted, tx.ID())
		}
		round++
	}
	awaitCond(t, 60*time.Second, fmt.Sprintf("A at height %d", target), func() bool {
		h, _ := tipOf(a)
		if round < nonces && h >= stopHeight+uint64(round*blocks/10) {
			submit()
		}
		return h >= target && round == nonces && a.Pool().Stats().Count == 0
	}, heads(a)...)
	if n := b.Pool().Stats().Count; n != 0 {
		t.Logf("B still pools %d txs", n)
	}

	// Restart C with only B as its bootstrap peer.
	if halt {
		a.prod.stop()
	}
	restartHeight, _ := tipOf(a)
	cfgC := catchupConfig(t, g, dirC, b)
	start := time.Now()
	c2 := startNode(t, cfgC, fastPoll)
	// The store survived the restart: C resumes from where it stopped.
	resumed, _ := tipOf(c2)
	if resumed < lo || resumed > stopHeight {
		t.Fatalf("restarted C at height %d, want %d..%d", resumed, lo, stopHeight)
	}
	awaitCond(t, 30*time.Second, fmt.Sprintf("C at height %d", restartHeight), func() bool {
		h, _ := tipOf(c2)
		return h >= restartHeight
	}, heads(c2)...)
	took := time.Since(start)
	want, _ := a.Store().BlockIDAt(restartHeight)
	if got, _ := c2.Store().BlockIDAt(restartHeight); got != want {
		t.Fatalf("C's block at height %d is %s, A's %s", restartHeight, got.Short(), want.Short())
	}
	st, _ := c2.Relay().SyncStats()
	if halt {
		// The syncer publishes its counters after the pool and chain work
		// of a loop turn, so they may trail the head event by one turn.
		// (No event for it outside the package: poll.)
		eventually(t, 5*time.Second, "the syncer's counters to settle", func() bool {
			st, _ = c2.Relay().SyncStats()
			return st.BlocksConnected >= restartHeight-resumed && st.HeadersPending == 0
		})
	}
	t.Logf("C caught up %d blocks (heights %d..%d) in %v (%.0f blocks/s); syncer: %d headers, %d blocks received, %d connected, %d stalls, %d offenses",
		restartHeight-resumed, resumed+1, restartHeight, took.Round(time.Millisecond),
		float64(restartHeight-resumed)/took.Seconds(), st.HeadersReceived, st.BlocksReceived, st.BlocksConnected, st.Stalls, st.Offenses)

	if halt && (st.BlocksConnected != restartHeight-resumed || st.BlocksReceived != st.BlocksConnected) {
		// Nothing else could have brought them: every block came by sync,
		// each exactly once.
		t.Errorf("halted chain: syncer connected %d and received %d blocks, want %d",
			st.BlocksConnected, st.BlocksReceived, restartHeight-resumed)
	}

	// Stop production so the tip is one fixed block, then C (and B) must
	// end on it.
	a.prod.stop()
	awaitCond(t, 20*time.Second, "B and C on A's final tip", func() bool {
		return sameTip(a, b) && sameTip(a, c2)
	}, heads(b, c2)...)
	finalH, finalID := tipOf(a)
	t.Logf("final tip %d %s", finalH, finalID.Short())

	// State agrees on every account the transfers touched.
	addrs := []chain.Address{chain.AddressOf(cfgA.ProducerKey)}
	for i := range senders {
		addrs = append(addrs,
			chain.AddressOf(chain.TestnetAccountKey(seed, i)),
			chain.AddressOf(chain.TestnetAccountKey(seed, recipient0+i)))
	}
	for i, addr := range addrs {
		wa, wc := a.Store().Account(addr), c2.Store().Account(addr)
		if wa != wc {
			t.Errorf("account %s: A has %+v, C has %+v", addr, wa, wc)
		}
		switch {
		case i == 0:
		case i%2 == 1 && wa.Nonce != nonces:
			t.Errorf("sender %s: nonce %d, want %d (all transfers mined)", addr, wa.Nonce, nonces)
		case i%2 == 0 && wa.Balance == 0:
			t.Errorf("recipient %s: zero balance", addr)
		}
	}
	// And on where every transfer was mined.
	for _, id := range submitted {
		la, oka := a.Store().TxLocation(id)
		lc, okc := c2.Store().TxLocation(id)
		if !oka || !okc || la != lc {
			t.Errorf("tx %s: A has it at %+v (%v), C at %+v (%v)", id.Short(), la, oka, lc, okc)
		}
	}
}

// TestJoiningNodeGetsPendingTxs fills the pools of A and B with 5,000
// pending transfers (1,000 senders × 5 nonces; no node produces, so they
// stay pending), then starts C with A as its only bootstrap peer. The
// transfers were announced before C existed, so gossip will not bring them
// again: C must pull them by mempool sync, within seconds.
func TestJoiningNodeGetsPendingTxs(t *testing.T) {
	const seed = "join-seed"
	total := 5000
	if testing.Short() {
		total = 1000
	}
	const nonces = 5
	senders := total / nonces
	// An hour's slot and no producer key anywhere: nothing is mined.
	g := chain.NewTestnetGenesis(catchupChainID, seed, senders, 1, time.Hour, time.Now())
	txs := make([][]byte, 0, total)
	for n := range nonces {
		for i := range senders {
			txs = append(txs, catchupTx(g, seed, i, (i+1)%senders, uint64(n), 1).Encode())
		}
	}

	a := startNode(t, catchupConfig(t, g, t.TempDir()))
	b := startNode(t, catchupConfig(t, g, t.TempDir(), a))
	// Grafts publish no event: poll.
	eventually(t, 20*time.Second, "A and B in each other's tx mesh", func() bool {
		ta, _ := a.MeshPeers()
		tb, _ := b.MeshPeers()
		return len(ta) > 0 && len(tb) > 0
	})

	for i, body := range txs {
		if _, v, err := a.Relay().SubmitTx(body); v != relay.Accepted {
			t.Fatalf("submit tx %d: %v %v", i, v, err)
		}
	}
	awaitCond(t, 60*time.Second, fmt.Sprintf("%d txs in B's pool", total), func() bool {
		return b.Pool().Stats().Count == total
	}, feedSource{b, rpc.TopicNewPendingTxs})
	if n := a.Pool().Stats().Count; n != total {
		t.Fatalf("A pools %d txs, want %d", n, total)
	}

	start := time.Now()
	c := startNode(t, catchupConfig(t, g, t.TempDir(), a))
	awaitCond(t, 30*time.Second, fmt.Sprintf("%d txs in C's pool", total), func() bool {
		return c.Pool().Stats().Count == total
	}, feedSource{c, rpc.TopicNewPendingTxs})
	took := time.Since(start)
	// The syncer publishes its counters once a loop turn's pool work is
	// done, so they may trail the pool by a turn: wait for the turn that
	// finished the last fetch. (No event for it outside the package: poll.)
	var st syncer.Stats
	eventually(t, 5*time.Second, "the syncer's fetch queue to drain", func() bool {
		st, _ = c.Relay().SyncStats()
		return st.PoolIDsReceived > 0 && st.TxsWanted == 0
	})
	if st.PoolIDsReceived < uint64(total) {
		t.Errorf("C received %d pool ids, want at least %d: mempool sync did not run", st.PoolIDsReceived, total)
	}
	rs := c.Relay().Stats()
	t.Logf("C holds all %d pending txs %v after start (%.0f tx/s); syncer: %d pool ids received, %d txs fetched, %d added; relay: %d announcements in, %d accepted, %d gossip fetches, %d bodies in all, %d duplicates",
		total, took.Round(time.Millisecond), float64(total)/took.Seconds(), st.PoolIDsReceived, st.TxsFetched, st.TxsAdded,
		rs.AnnouncementsIn, rs.Accepted, rs.Fetches, rs.BodiesReceived, rs.DuplicateBodies)
	if s := c.Pool().Stats(); s.Queued != 0 || s.Senders != senders {
		t.Errorf("C's pool: %+v, want %d senders and nothing queued", s, senders)
	}
	missing := 0
	for _, body := range txs {
		tx, _ := chain.DecodeTx(body)
		if !c.Pool().Has(tx.ID()) {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("C lacks %d of the %d txs", missing, total)
	}
	// "Within seconds": 20 s leaves room for -race on a loaded 2-core CI
	// machine; unloaded it takes well under one.
	if limit := 20 * time.Second; took > limit {
		t.Fatalf("joining took %v, over %v", took, limit)
	}
}
