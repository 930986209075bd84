package relay

import (
	"context"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/relaytest"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// TestTxLinkModeOneBodyAndLeanAnnouncements: in link mode every tx
// reaches every node, each node fetches each body once, and the
// announcements cost a fraction of what announce mode's do on the same
// graph (memnet floods every neighbour in announce mode, and link mode
// announces to the same neighbours: the difference is per-link batching
// of 8-byte prefixes against one enveloped message per copy).
func TestTxLinkModeOneBodyAndLeanAnnouncements(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, ntx, size = 12, 60, 250
		announced := map[TxMode]uint64{}
		for _, mode := range []TxMode{TxLink, TxAnnounce} {
			rng := rand.New(rand.NewPCG(5, 5))
			_, nodes := simNet(t, n, sparseGraph(n, 8, rng), 10*time.Millisecond, func(int) Config {
				cfg := testConfig(BlockCompact)
				cfg.NoSync = true
				cfg.TxMode = mode
				return cfg
			})
			ctx := waitCtx(t, time.Minute)
			var ids []ID
			for i := range ntx {
				// Several origins, a few txs a window: batches of
				// more than one id form on the way.
				id, v, err := nodes[i%4].r.SubmitTx(mkTx("link-"+string(mode), i, size))
				if v != Accepted {
					t.Fatal(v, err)
				}
				ids = append(ids, id)
				if i%3 == 2 {
					time.Sleep(7 * time.Millisecond)
				}
			}
			waitPools(t, ctx, nodes, ids)
			time.Sleep(time.Second) // late copies land
			var wire, dups, fetched uint64
			for i, nd := range nodes {
				s := nd.r.Stats()
				wire += s.TxAnnounceWireBytesIn
				dups += s.DuplicateBodies
				fetched += s.BodiesReceived
				if offs := nd.offs.all(); len(offs) != 0 {
					t.Fatalf("%s mode: node %d offenses %v", mode, i, offs)
				}
				if mode == TxLink && s.Protocols[protoLink].In == 0 {
					t.Fatalf("node %d received no link bytes: %+v", i, s.Protocols)
				}
			}
			announced[mode] = wire
			t.Logf("%-8s: announcements with framing %d bytes (%.1f per tx per node), bodies %d, duplicate bodies %d",
				mode, wire, float64(wire)/float64(ntx*n), fetched, dups)
			if mode == TxLink {
				// The 4 origins hold their own txs; everyone else
				// fetches each exactly once.
				if want := uint64(ntx * (n - 1)); fetched != want || dups != 0 {
					t.Fatalf("link mode: %d bodies received (%d duplicates), want %d and none", fetched, dups, want)
				}
			}
			for _, nd := range nodes {
				_ = nd.r.Close()
			}
		}
		if announced[TxLink]*3 > announced[TxAnnounce] {
			t.Fatalf("link announcements %d bytes, announce mode %d: want under a third", announced[TxLink], announced[TxAnnounce])
		}
	})
}

// TestTxLinkHostile: a peer that breaks the link protocol pays for it: a
// message over the cap OffenseOversize, a malformed one OffenseMalformed,
// a prefix it then does not serve OffenseNotFound; an honest TxSeen from
// the same rogue is fetched and taken.
func TestTxLinkHostile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		cfg.TxMode = TxLink
		net := newNet(t, 0)
		v := newNode(t, net, "V", cfg)
		good := mkTx("served", 1, 200)
		id := txID(good)
		// The rogue: a bare memnet node that serves good by prefix and
		// nothing else, and sends raw link messages.
		w := net.Add("W")
		if _, err := w.Join(cfg.TxTopic(), transport.TopicConfig{}); err != nil {
			t.Fatal(err)
		}
		w.Serve(cfg.RequestProtocol(), func(_ PeerID, read transport.ReadRequest) ([]byte, func()) {
			data, err := read(wire.MaxRequestFrame)
			if err != nil {
				return nil, nil
			}
			q, ok := mustDecode(data).(*wire.GetTxsByPrefix)
			if !ok {
				return nil, nil
			}
			out := &wire.Txs{}
			for _, x := range q.Prefixes {
				var b []byte
				if x == wire.TxPrefix(id) {
					b = good
				}
				out.Bodies = append(out.Bodies, b)
			}
			resp, _ := out.Encode()
			return resp, nil
		})
		net.ConnectLatency(v.id, w.Self(), 5*time.Millisecond)
		if err := v.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		proto := cfg.TxLinkProtocol()
		send := func(msg []byte) {
			t.Helper()
			if err := w.Send(v.id, proto, msg); err != nil {
				t.Fatal(err)
			}
		}
		ctx := waitCtx(t, time.Minute)

		send([]byte{wire.TagTxSeen, 1, 2, 3}) // not a whole prefix
		send(make([]byte, wire.MaxTxSeenBytes+1))
		unknown, _ := (&wire.TxSeen{Prefixes: []uint64{42}}).Encode()
		send(unknown)
		honest, _ := (&wire.TxSeen{Prefixes: []uint64{wire.TxPrefix(id)}}).Encode()
		send(honest)
		if err := v.pool.WaitFor(ctx, func() bool { return v.pool.HasTx(id) }); err != nil {
			t.Fatalf("the served tx was not taken: %v", err)
		}
		for _, o := range []Offense{OffenseMalformed, OffenseOversize, OffenseNotFound} {
			if err := v.offs.WaitFor(ctx, func() bool { return v.offs.has("W", o) }); err != nil {
				t.Fatalf("no %v for W: %v (offenses %v)", o, err, v.offs.all())
			}
		}
	})
}

// mustDecode decodes a request, nil when it does not decode.
func mustDecode(data []byte) wire.Request {
	q, err := wire.DecodeRequest(data)
	if err != nil {
		return nil
	}
	return q
}

// TestTxLinkNeedsAMessenger: link mode refuses a transport that cannot
// send one-way messages, at New rather than silently announcing nothing.
func TestTxLinkNeedsAMessenger(t *testing.T) {
	net := newNet(t, 0)
	tr := struct{ transport.Transport }{net.Add("A")} // hides Send and Receive
	cfg := testConfig(BlockCompact)
	cfg.TxMode = TxLink
	pool := relaytest.NewPool()
	if _, err := New(tr, relaytest.NewChain(pool), pool, cfg); err == nil {
		t.Fatal("link mode started on a transport without a messenger")
	}
}

// TestTxLinkCutThroughSavesRoundTrips: on long links a prefix new here is
// announced onwards while its body is fetched, and a peer that asks for
// it meanwhile waits and is served, so a tx crosses a ring of 12 (6 hops
// to the far side) in about one link latency a hop plus a round trip,
// against three latencies a hop fetch-first; nobody is charged for it.
func TestTxLinkCutThroughSavesRoundTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, latency = 12, 25 * time.Millisecond
		took := map[bool]time.Duration{}
		for _, fetchFirst := range []bool{false, true} {
			var edges [][2]int
			for i := range n {
				edges = append(edges, [2]int{i, (i + 1) % n})
			}
			_, nodes := simNet(t, n, edges, latency, func(int) Config {
				cfg := testConfig(BlockCompact)
				cfg.NoSync = true
				cfg.TxMode = TxLink
				cfg.TxFetchBeforeForward = fetchFirst
				return cfg
			})
			ctx := waitCtx(t, time.Minute)
			// Warm-up: request round trips for the cut-through gate.
			var warm []ID
			for i := range 8 {
				id, _, _ := nodes[i].r.SubmitTx(mkTx("warm", i, 200))
				warm = append(warm, id)
			}
			waitPools(t, ctx, nodes, warm)
			start := time.Now()
			id, v, err := nodes[0].r.SubmitTx(mkTx("timed", 0, 200))
			if v != Accepted {
				t.Fatal(v, err)
			}
			waitPools(t, ctx, nodes, []ID{id})
			took[fetchFirst] = time.Since(start)
			var early, dups uint64
			for i, nd := range nodes {
				s := nd.r.Stats()
				early += s.TxAnnouncementsEarly
				dups += s.DuplicateBodies
				if offs := nd.offs.all(); len(offs) != 0 {
					t.Fatalf("fetch first %v: node %d offenses %v", fetchFirst, i, offs)
				}
			}
			t.Logf("fetch first %-5v: to all in %v, %d prefixes forwarded early, %d duplicate bodies", fetchFirst, took[fetchFirst], early, dups)
			if (early > 0) == fetchFirst {
				t.Fatalf("fetch first %v: %d prefixes forwarded early", fetchFirst, early)
			}
			for _, nd := range nodes {
				_ = nd.r.Close()
			}
		}
		// Fetch-first: 6 hops of 3 latencies and a batch window each.
		// Cut-through: 6 hops of a latency and a window, and a round trip
		// at the far end.
		if want := 6*(latency+TxLinkWindow) + 2*latency; took[false] > want || took[false]*3 > took[true]*2 {
			t.Fatalf("cut-through to all in %v, fetch-first %v: want at most %v and 2/3 of fetch-first", took[false], took[true], want)
		}
	})
}

// TestTxLinkMixedModes: link-mode and announce-mode nodes in one network
// pass txs to each other: an announce-mode node takes TxSeen, fetches by
// prefix and passes the tx on over GossipSub; a link-mode node takes
// GossipSub announcements and passes them on per link.
func TestTxLinkMixedModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, ntx = 10, 30
		// A ring alternating link and announce nodes: every tx must
		// cross from one mode to the other at every hop.
		var edges [][2]int
		for i := range n {
			edges = append(edges, [2]int{i, (i + 1) % n})
		}
		_, nodes := simNet(t, n, edges, 10*time.Millisecond, func(i int) Config {
			cfg := testConfig(BlockCompact)
			cfg.NoSync = true
			if i%2 == 0 {
				cfg.TxMode = TxLink
			}
			return cfg
		})
		ctx := waitCtx(t, time.Minute)
		var ids []ID
		for i := range ntx {
			id, v, err := nodes[i%n].r.SubmitTx(mkTx("mixed", i, 200))
			if v != Accepted {
				t.Fatal(v, err)
			}
			ids = append(ids, id)
		}
		waitPools(t, ctx, nodes, ids)
		for i, nd := range nodes {
			if offs := nd.offs.all(); len(offs) != 0 {
				t.Fatalf("node %d offenses %v", i, offs)
			}
		}
	})
}

// TestAllDropped: only a non-empty answer whose every item the scheduler
// dropped untried spares an early forwarder the fetch-first path.
func TestAllDropped(t *testing.T) {
	for _, tc := range []struct {
		res  []itemResult
		want bool
	}{
		{nil, false},
		{[]itemResult{{status: stDropped}, {status: stDropped}}, true},
		{[]itemResult{{status: stDropped}, {status: stNotFound}}, false},
		{[]itemResult{{status: stOK}}, false},
	} {
		if got := allDropped(tc.res); got != tc.want {
			t.Errorf("allDropped(%v) = %v, want %v", tc.res, got, tc.want)
		}
	}
}
