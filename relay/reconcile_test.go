package relay

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/recon"
	"github.com/rumor-relay/rumor/relay/wire"
)

// reconPair is two relays, A and B, linked, with gossip and sync quiet
// (sync off, no reconciliation loop): pools are filled by hand and
// reconciled by calling Reconcile.
func reconPair(t *testing.T) (a, b *tnode) {
	t.Helper()
	cfg := testConfig(BlockCompact)
	cfg.NoSync, cfg.NoReconcile = true, true
	_, nodes := simNet(t, 2, [][2]int{{0, 1}}, 10*time.Millisecond, func(int) Config { return cfg })
	return nodes[0], nodes[1]
}

func addTxs(t *testing.T, n *tnode, tag string, from, to int) []ID {
	t.Helper()
	var ids []ID
	for i := from; i < to; i++ {
		id, v, err := n.pool.AddTx(mkTx(tag, i, 120))
		if v != Accepted {
			t.Fatal(v, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestReconcile: B lacks 40 of A's 1,000 pending txs and holds 7 A lacks.
// One session pulls exactly the 40 into B's pool with a few dozen symbols
// (not a listing of the pool), and counts the 7 as extra; the next session
// finds nothing once those 40 are older than ReconcileMinAge. A third
// session after A gains 200 txs needs a second, bigger attempt and still
// decodes.
func TestReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := reconPair(t)
		ctx := waitCtx(t, time.Minute)
		addTxs(t, a, "shared", 0, 960)
		addTxs(t, b, "shared", 0, 960)
		missing := addTxs(t, a, "a-only", 0, 40)
		addTxs(t, b, "b-only", 0, 7)
		res, err := b.r.Reconcile(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Missing) != 40 || res.Added != 40 || res.Extra != 7 {
			t.Fatalf("missing %d, added %d, extra %d; want 40, 40, 7", len(res.Missing), res.Added, res.Extra)
		}
		for _, id := range missing {
			if !b.pool.HasTx(id) {
				t.Fatalf("%s not pulled", id.Short())
			}
		}
		if res.Symbols > 4*47 {
			t.Fatalf("%d symbols for a difference of 47", res.Symbols)
		}
		t.Logf("difference 47: %d symbols, %d reconcile bytes in", res.Symbols, b.r.Stats().Classes[classReconcile].In)
		// Txs first seen within ReconcileMinAge stay out of sessions (the 40
		// B just pulled): wait until they are old.
		time.Sleep(ReconcileMinAge)
		if res, err = b.r.Reconcile(ctx, a.id); err != nil || len(res.Missing) != 0 || res.Extra != 7 {
			t.Fatalf("second session: %+v %v", res, err)
		}
		addTxs(t, a, "burst", 0, 200)
		time.Sleep(SymbolsWindow) // A rations each peer's sessions
		if res, err = b.r.Reconcile(ctx, a.id); err != nil || res.Added != 200 {
			t.Fatalf("after a burst of 200: %+v %v", res, err)
		}
		if n := b.r.Stats().Reconciliations; n != 3 {
			t.Fatalf("%d sessions counted", n)
		}
	})
}

// TestReconcileLoopRepairs: with the loop on, a tx that reached only A
// (its announcement lost) reaches B within a couple of intervals, and B
// announces it on (its mesh would fetch it from B).
func TestReconcileLoopRepairs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync, cfg.NoReconcile = true, false
		_, nodes := simNet(t, 2, [][2]int{{0, 1}}, 10*time.Millisecond, func(int) Config { return cfg })
		a, b := nodes[0], nodes[1]
		ids := addTxs(t, a, "lost", 0, 5) // in A's pool, never announced
		start := time.Now()
		eventually(t, 3*ReconcileInterval, func() error {
			for _, id := range ids {
				if !b.pool.HasTx(id) {
					return fmt.Errorf("%s missing at B", id.Short())
				}
			}
			return nil
		})
		t.Logf("repaired after %v", time.Since(start))
		if b.r.Stats().ReconcilePulled != 5 {
			t.Fatalf("pulled %d", b.r.Stats().ReconcilePulled)
		}
	})
}

// TestHostileSketches: a peer that answers reconciliation with garbage,
// with the wrong number of symbols, or with symbols of ids it does not
// hold. Garbage decodes to nothing and costs at most MaxReconcileAttempts
// requests, no fetch; a wrong count is a malformed answer; ids it lied
// about are asked for once and cost it a not-found offense each.
func TestHostileSketches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(q *wire.GetSymbols, fake []ID) []byte
		wantErr error
		offense Offense
	}{
		{"garbage", func(q *wire.GetSymbols, _ []ID) []byte {
			syms := make([]recon.Symbol, q.Count)
			for i := range syms {
				syms[i].Count = uint32(i%3) - 1
				syms[i].Sum[0], syms[i].Check = byte(i), uint64(i)*0x9e3779b97f4a7c15
			}
			b, _ := recon.AppendSymbols(nil, 0, syms)
			return b
		}, ErrUndecoded, 0},
		{"short", func(q *wire.GetSymbols, _ []ID) []byte {
			b, _ := recon.AppendSymbols(nil, 0, make([]recon.Symbol, q.Count-1))
			return b
		}, nil, OffenseMalformed},
		{"lying", func(q *wire.GetSymbols, fake []ID) []byte {
			enc := recon.NewEncoder(recon.Key(q.Key))
			for _, id := range fake {
				enc.Add(id)
			}
			syms, _ := enc.Symbols(0, int(q.Count))
			b, _ := recon.AppendSymbols(nil, 0, syms)
			return b
		}, nil, OffenseNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(BlockCompact)
				cfg.NoSync, cfg.NoReconcile = true, true
				net := newNet(t, 0)
				v := newNode(t, net, "V", cfg)
				var fake []ID
				for i := range 10 {
					fake = append(fake, txID(mkTx("fake", i, 100)))
				}
				var symbolReqs, txReqs atomic.Int64
				newRogue(t, net, "W", cfg, func(req wire.Request) []byte {
					switch q := req.(type) {
					case *wire.GetSymbols:
						symbolReqs.Add(1)
						return encode(&wire.Symbols{Batch: tc.answer(q, fake)})
					case *wire.GetTxs:
						txReqs.Add(1)
						return encode(&wire.Txs{Bodies: make([][]byte, len(q.IDs))})
					}
					return nil
				})
				net.ConnectLatency(v.id, "W", 5*time.Millisecond)
				if err := v.r.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				ctx := waitCtx(t, time.Minute)
				res, err := v.r.Reconcile(ctx, "W")
				switch {
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				case tc.offense == OffenseMalformed:
					if o, ok := offenseOfErr(err); !ok || o != OffenseMalformed {
						t.Fatalf("err %v, want a malformed answer", err)
					}
				case tc.offense == OffenseNotFound:
					if err != nil || len(res.Missing) != len(fake) || res.Added != 0 {
						t.Fatalf("lying sketch: %+v %v", res, err)
					}
					synctest.Wait()
					if !v.offs.has("W", OffenseNotFound) {
						t.Fatalf("no not-found offense: %v", v.offs.all())
					}
				}
				if n := symbolReqs.Load(); n > MaxReconcileAttempts {
					t.Fatalf("%d symbol requests in one session", n)
				}
				if tc.name == "garbage" && txReqs.Load() != 0 {
					t.Fatalf("garbage made the node fetch %d times", txReqs.Load())
				}
				for _, id := range fake {
					if v.pool.HasTx(id) {
						t.Fatal("a fake id entered the pool")
					}
				}
			})
		})
	}
}

// TestSymbolsRationed: a peer asking for symbols faster than an honest
// session does is answered busy and penalized; symbols from an index
// other than 0 are refused (nobody asks for them honestly, and they would
// make the server build symbols it does not send).
func TestSymbolsRationed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := reconPair(t)
		ctx := waitCtx(t, time.Minute)
		addTxs(t, a, "pool", 0, 100)
		q := &wire.GetSymbols{Count: 32}
		for i := range MaxSymbolsPerWindow {
			if _, err := b.r.requestClass(ctx, a.id, q, wire.MaxSymbolsResponseFrame, classReconcile); err != nil {
				t.Fatalf("request %d of a session: %v", i, err)
			}
		}
		if _, err := b.r.requestClass(ctx, a.id, q, wire.MaxSymbolsResponseFrame, classReconcile); !errors.Is(err, ErrRefused) {
			t.Fatalf("a request past the window's ration: %v, want refused", err)
		}
		if !a.offs.has(b.id, OffenseRequestFlood) {
			t.Fatalf("no flood offense: %v", a.offs.all())
		}
		time.Sleep(SymbolsWindow)
		if _, err := b.r.requestClass(ctx, a.id, q, wire.MaxSymbolsResponseFrame, classReconcile); err != nil {
			t.Fatalf("after the window: %v", err)
		}
		time.Sleep(SymbolsWindow)
		q.Start = 32
		if _, err := b.r.requestClass(ctx, a.id, q, wire.MaxSymbolsResponseFrame, classReconcile); !errors.Is(err, ErrRefused) {
			t.Fatalf("symbols from index 32: %v, want refused", err)
		}
	})
}

// TestReconcileRotatesPastFailingPeer: a peer that answers every session
// busy does not keep the node from reconciling with its other peers (each
// session, failed or not, moves the peer to the back of the line).
func TestReconcileRotatesPastFailingPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync, cfg.NoReconcile = true, false
		net := newNet(t, 0)
		v := newNode(t, net, "V", cfg)
		h := newNode(t, net, "H", cfg)
		newRogue(t, net, "B", cfg, func(wire.Request) []byte {
			return encode(&wire.Error{Code: wire.ErrCodeBusy})
		})
		net.ConnectLatency(v.id, "B", 5*time.Millisecond)
		net.ConnectLatency(v.id, h.id, 5*time.Millisecond)
		for _, n := range []*tnode{v, h} {
			if err := n.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(8 * ReconcileInterval)
		// About 8 rounds: every other one with H (B's fail; B sorts first,
		// so it would be picked every round if failing kept it in front).
		if n := v.r.Stats().Reconciliations; n < 3 {
			t.Fatalf("%d sessions with the honest peer in 8 intervals", n)
		}
	})
}

// TestReconcileGuessFromLastSession: B lacks 600 txs that A and C both
// hold, more than a session from the minimum decodes (32, 128, 512
// symbols: ~350 ids). The session with A fails; the next, with C, a peer
// B never reconciled with, starts from what the failed session reached
// instead of from the minimum, and pulls all 600.
func TestReconcileGuessFromLastSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync, cfg.NoReconcile = true, true
		_, nodes := simNet(t, 3, [][2]int{{0, 1}, {1, 2}}, 10*time.Millisecond, func(int) Config { return cfg })
		a, b, c := nodes[0], nodes[1], nodes[2]
		ctx := waitCtx(t, time.Minute)
		for _, n := range []*tnode{a, b, c} {
			addTxs(t, n, "shared", 0, 100)
		}
		addTxs(t, a, "far", 0, 600)
		addTxs(t, c, "far", 0, 600)
		time.Sleep(ReconcileMinAge)
		if _, err := b.r.Reconcile(ctx, a.id); !errors.Is(err, ErrUndecoded) {
			t.Fatalf("first session: %v, want ErrUndecoded", err)
		}
		res, err := b.r.Reconcile(ctx, c.id)
		if err != nil || res.Added != 600 {
			t.Fatalf("session with a new peer: %+v %v; want 600 added", res, err)
		}
		if first := 512 + 512/2 + 8; res.Symbols < first {
			t.Fatalf("%d symbols: the session did not start from the failed one's last count", res.Symbols)
		}
	})
}

// TestReconcileFallsBackToListing: B lacks 2,500 of A's txs, more than the
// largest symbol batch decodes. The first session fails from the minimum;
// the next reaches MaxSymbolsPerBatch, fails there too, and pulls from a
// listing of A's pool instead: all 2,500 land in B's pool, and a tx that
// reaches B by gossip while the session waits out ReconcileListWait is
// not pulled again.
func TestReconcileFallsBackToListing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := reconPair(t)
		ctx := waitCtx(t, time.Minute)
		addTxs(t, a, "shared", 0, 100)
		addTxs(t, b, "shared", 0, 100)
		far := addTxs(t, a, "far", 0, 2500)
		time.Sleep(ReconcileMinAge)
		if _, err := b.r.Reconcile(ctx, a.id); !errors.Is(err, ErrUndecoded) {
			t.Fatalf("first session: %v, want ErrUndecoded", err)
		}
		time.Sleep(SymbolsWindow)
		// One of the 2,500 arrives at B while the session waits.
		go func() {
			time.Sleep(ReconcileListWait / 2)
			if _, v, err := b.pool.AddTx(mkTx("far", 7, 120)); v != Accepted {
				t.Errorf("adding by hand: %v %v", v, err)
			}
		}()
		res, err := b.r.Reconcile(ctx, a.id)
		if err != nil || !res.Listed {
			t.Fatalf("second session: %+v %v; want a listing", res, err)
		}
		if len(res.Missing) != 2499 || res.Added != 2499 {
			t.Fatalf("listing: %d missing, %d added; want 2499 (2500 less the one gossip brought)", len(res.Missing), res.Added)
		}
		for _, id := range far {
			if !b.pool.HasTx(id) {
				t.Fatalf("%s not pulled", id.Short())
			}
		}
		st := b.r.Stats()
		if st.ReconcileListed != 1 || st.ReconcilePulled != 2499 {
			t.Fatalf("stats: %d listed, %d pulled", st.ReconcileListed, st.ReconcilePulled)
		}
		if res.Symbols > 776+recon.MaxSymbolsPerBatch {
			t.Fatalf("%d symbols: the session went on past the largest batch", res.Symbols)
		}
		if offs := a.offs.all(); len(offs) != 0 {
			t.Fatalf("A recorded offenses %v", offs)
		}
	})
}

// reconcilingNet is n nodes linked by edges (10 ms) whose own loops
// reconcile every interval; sync is off, so only reconciliation repairs.
func reconcilingNet(t *testing.T, n int, edges [][2]int, interval time.Duration) []*tnode {
	cfg := testConfig(BlockCompact)
	cfg.NoSync, cfg.NoReconcile = true, false
	cfg.ReconcileInterval = interval
	_, nodes := simNet(t, n, edges, 10*time.Millisecond, func(int) Config { return cfg })
	return nodes
}

// TestReconcileRetriesUndecodedAtOnce: B lacks 600 txs that A and C both
// hold, more than a session from the minimum decodes. With the sessions of
// B's own loop a minute apart (jittered to 45..75 s), B holds all 600
// before a second interval could start: the failed session is followed at
// once by one with the other peer, from the failed one's count.
func TestReconcileRetriesUndecodedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Minute
		nodes := reconcilingNet(t, 3, [][2]int{{0, 1}, {1, 2}}, interval)
		a, b, c := nodes[0], nodes[1], nodes[2]
		far := addTxs(t, a, "far", 0, 600)
		addTxs(t, c, "far", 0, 600)
		start := time.Now()
		deadline := start.Add(2 * interval * 3 / 4) // the earliest a second round could start
		for {
			held := 0
			for _, id := range far {
				if b.pool.HasTx(id) {
					held++
				}
			}
			if held == len(far) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B holds %d of %d after %v", held, len(far), time.Since(start))
			}
			time.Sleep(time.Second)
		}
		if st := b.r.Stats(); st.Reconciliations != 1 {
			t.Fatalf("B decoded %d sessions, want 1 (after one that did not decode)", st.Reconciliations)
		}
	})
}

// TestReconcileNoRetryWithOnlyPeer: with one peer, a session that did not
// decode is not followed at once by another with the same peer (its
// GetSymbols ration would refuse it as a flood and penalize us); the next
// round, from the failed session's count, repairs the difference.
func TestReconcileNoRetryWithOnlyPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Minute
		nodes := reconcilingNet(t, 2, [][2]int{{0, 1}}, interval)
		a, b := nodes[0], nodes[1]
		far := addTxs(t, a, "far", 0, 600)
		time.Sleep(2*interval*5/4 + time.Second)
		for _, id := range far {
			if !b.pool.HasTx(id) {
				t.Fatal("B lacks txs after two rounds")
			}
		}
		if offs := a.offs.all(); len(offs) != 0 {
			t.Fatalf("A recorded offenses %v", offs)
		}
	})
}
