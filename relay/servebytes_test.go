package relay

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
	"github.com/rumor-relay/rumor/relay/relaytest"
)

// countingChain counts the whole-block loads a server makes.
type countingChain struct {
	*relaytest.Chain
	loads atomic.Int64
}

func (c *countingChain) GetBlock(id ID) ([]byte, bool) {
	c.loads.Add(1)
	return c.Chain.GetBlock(id)
}

// sizeless hides every optional interface of the chain it wraps
// (BlockSizer among them): a chain that cannot size blocks before loading.
type sizeless struct{ Chain }

// byteBudget is a ServeBudget with a fixed byte allowance and unlimited
// requests.
type byteBudget struct {
	mu   sync.Mutex
	left int
}

func (b *byteBudget) AllowRequest(PeerID, time.Time) bool { return true }

func (b *byteBudget) AllowBytes(_ PeerID, n int, _ time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

// servePair starts a server relay over chain (with opts) and two plain
// client relays, s-c1 and s-c2 connected, sync off. Links take no time,
// so synctest.Wait returns only once requests have reached the server.
func servePair(t *testing.T, cfg Config, chain Chain, opts ...Option) (s *Relay, c1, c2 *tnode) {
	t.Helper()
	cfg.NoSync = true
	net := newNet(t, 0)
	tr := net.Add("server")
	s, err := New(tr, chain, relaytest.NewPool(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c1, c2 = newNode(t, net, "c1", cfg), newNode(t, net, "c2", cfg)
	startAll(t, net, s, c1, c2)
	return s, c1, c2
}

func startAll(t *testing.T, net *memnet.Network, s *Relay, cs ...*tnode) {
	t.Helper()
	for _, c := range cs {
		net.Connect("server", c.id)
	}
	for _, r := range []*Relay{s, cs[0].r, cs[1].r} {
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// storeBlock builds and stores a block of about size bytes on c.
func storeBlock(t *testing.T, c *relaytest.Chain, salt uint64, size int) ID {
	t.Helper()
	var txs [][]byte
	for i := 0; size > 0; i++ {
		n := min(size, 12<<10)
		txs = append(txs, mkTx("big", int(salt)*100+i, n))
		size -= n
	}
	b, id := c.Build(salt, txs)
	if _, v, err := c.AddBlock(b); v != Accepted {
		t.Fatal(v, err)
	}
	return id
}

// TestServeChargesWholeBlocksBeforeLoading: a request for a whole block is
// sized from the chain's index and charged to the requester's byte budget
// before the block is loaded, so a peer over its budget costs the node no
// load at all (before, the block was loaded and encoded, then refused).
func TestServeChargesWholeBlocksBeforeLoading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		chain := &countingChain{Chain: relaytest.NewChain(relaytest.NewPool())}
		small := storeBlock(t, chain.Chain, 1, 10<<10)
		big := storeBlock(t, chain.Chain, 2, 40<<10)
		budget := &byteBudget{left: 24 << 10}
		var offs offenseLog
		_, c1, _ := servePair(t, cfg, chain, WithServeBudget(budget), WithPenaltyHook(offs.hook))
		ctx := waitCtx(t, 10*time.Second)
		if _, err := c1.r.RequestBlock(ctx, "server", small); err != nil {
			t.Fatalf("block within the budget: %v", err)
		}
		if n := chain.loads.Load(); n != 1 {
			t.Fatalf("%d loads for one served block", n)
		}
		if _, err := c1.r.RequestBlock(ctx, "server", big); !errors.Is(err, ErrRefused) {
			t.Fatalf("block over the budget: %v, want refused", err)
		}
		if n := chain.loads.Load(); n != 1 {
			t.Fatalf("the block over the budget was loaded (%d loads)", n)
		}
		if !offs.has(c1.id, OffenseRequestFlood) {
			t.Fatalf("over its byte budget without an offense: %v", offs.all())
		}
	})
}

// TestServeBytesHeldCap: a peer holds at most MaxServeResponsesPerPeer
// maximal responses at once, counted from sizing until the answer has
// been sent; past that it is answered busy without an offense (honest
// peers syncing hard reach it too), other peers are still served, and
// every byte is given back when the answers are out. The chain here
// cannot size blocks, so a whole-block request reserves a maximal
// response while it is built.
func TestServeBytesHeldCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.MaxBlockBytes, cfg.MaxTxBytes = 64<<10, 16<<10
		inner := relaytest.NewChain(relaytest.NewPool())
		id := storeBlock(t, inner, 1, 20<<10)
		var offs offenseLog
		s, c1, c2 := servePair(t, cfg, sizeless{inner}, WithPenaltyHook(offs.hook))
		gate := make(chan struct{})
		inner.SetGate(gate)
		ctx := waitCtx(t, 10*time.Second)
		held := make(chan error, MaxServeResponsesPerPeer)
		for range MaxServeResponsesPerPeer {
			go func() {
				_, err := c1.r.RequestBlock(ctx, "server", id)
				held <- err
			}()
		}
		synctest.Wait() // both parked loading the block
		if _, err := c1.r.RequestBlock(ctx, "server", id); !errors.Is(err, ErrRefused) {
			t.Fatalf("a third maximal response at once: %v, want refused", err)
		}
		if len(offs.all()) != 0 {
			t.Fatalf("offenses for a busy answer: %v", offs.all())
		}
		if n := s.Stats().RequestsBusy; n != 1 {
			t.Fatalf("%d busy answers counted, want 1", n)
		}
		if _, err := c2.r.RequestTxs(ctx, "server", []ID{{1}}); err != nil {
			t.Fatalf("another peer refused while c1 held its share: %v", err)
		}
		close(gate)
		for range MaxServeResponsesPerPeer {
			if err := <-held; err != nil {
				t.Fatalf("held request: %v", err)
			}
		}
		synctest.Wait()
		if s.serveBytes.running != 0 || len(s.serveBytes.per) != 0 {
			t.Fatalf("bytes still held after every answer: %d, %v", s.serveBytes.running, s.serveBytes.per)
		}
	})
}

// TestServeUploadCap: the node's upload cap (Config.UploadBytesPerSecond)
// bounds what all peers together take, each within its own budget: past
// the burst both peers are answered busy, without an offense, until the
// bucket refills.
func TestServeUploadCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.MaxBlockBytes, cfg.MaxTxBytes = 64<<10, 16<<10
		cfg.UploadBytesPerSecond = 1 << 10 // burst: one maximal response, 128 KiB
		chain := relaytest.NewChain(relaytest.NewPool())
		id := storeBlock(t, chain, 1, 40<<10)
		var offs offenseLog
		_, c1, c2 := servePair(t, cfg, chain, WithPenaltyHook(offs.hook))
		ctx := waitCtx(t, time.Hour)
		served := 0
		for _, c := range []*tnode{c1, c2, c1, c2} {
			if _, err := c.r.RequestBlock(ctx, "server", id); err == nil {
				served++
			} else if !errors.Is(err, ErrRefused) {
				t.Fatal(err)
			}
		}
		if served != 3 {
			t.Fatalf("%d of 4 40 KiB blocks served under a 128 KiB burst, want 3", served)
		}
		if _, err := c2.r.RequestBlock(ctx, "server", id); !errors.Is(err, ErrRefused) {
			t.Fatalf("over the node's cap: %v, want refused", err)
		}
		if len(offs.all()) != 0 {
			t.Fatalf("offenses for the node's own cap: %v", offs.all())
		}
		time.Sleep(45 * time.Second) // 45 KiB refilled
		if _, err := c1.r.RequestBlock(ctx, "server", id); err != nil {
			t.Fatalf("after the refill: %v", err)
		}
	})
}
