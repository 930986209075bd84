package syncer

import (
	"slices"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/relay/wire"
)

// 500 blocks behind, three peers: one honest, one that stalls its first
// block requests, one that serves a wrong block. The node ends on the
// honest tip; the staller and the liar are penalized; the stalled work is
// reassigned (the download does not wait for the staller's doubled
// timeouts).
func TestCoreCatchUpWithStallerAndLiar(t *testing.T) {
	full := genChain(nil, 500, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	honest := &simPeer{id: "honest", chain: full}
	staller := &simPeer{id: "staller", chain: full, stallBlocks: 3, latency: 10 * time.Millisecond}
	liar := &simPeer{id: "liar", chain: full, mismatchAt: map[uint64]bool{}, latency: 20 * time.Millisecond}
	for h := uint64(1); h <= 500; h += 7 {
		liar.mismatchAt[h] = true
	}
	s.addPeer(honest)
	s.addPeer(staller)
	s.addPeer(liar)
	s.runUntil(time.Minute, s.tipIs(full[500]))

	if n := s.penalized("staller", OffenseStall); n < 1 {
		t.Errorf("staller stalls penalized %d times, want >= 1", n)
	}
	if n := s.penalized("liar", OffenseMismatch); n < 1 {
		t.Errorf("liar mismatches penalized %d times, want >= 1", n)
	}
	if n := len(s.penalties) - s.penalized("staller", OffenseStall) - s.penalized("liar", OffenseMismatch); n != 0 {
		t.Errorf("unexpected penalties: %+v", s.penalties)
	}
	if s.chain.adds != 500 {
		t.Errorf("chain saw %d adds, want 500 (each block once, in order)", s.chain.adds)
	}
	// Every block went in flight at most MaxBlocksInFlightPerPeer per peer
	// and the honest peer served the bulk.
	if honest.blockReqs == 0 {
		t.Error("honest peer served nothing")
	}
	// 500 blocks with 50 ms latency and 8 blocks per request over up to 3
	// peers: far below the simulated minute, even with the stalls.
	if el := s.now.Sub(t0); el > 20*time.Second {
		t.Errorf("catch-up took %v simulated", el)
	}
	st := s.core.Stats()
	if st.Behind || st.HeadersPending != 0 || st.BlocksBuffered != 0 || st.BufferedBytes != 0 || st.BlocksInFlight != 0 {
		t.Errorf("state not drained after catch-up: %+v", st)
	}
	t.Logf("caught up 500 blocks in %v simulated; stats %+v", s.now.Sub(t0), st)
}

// The stall timeout doubles on repeated stalls up to the cap and resets
// after an answer. Two requests sent together under one deadline that both
// time out are one stall.
func TestCoreStallTimeoutDoublesAndResets(t *testing.T) {
	full := genChain(nil, 40, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	p := &simPeer{id: "slow", chain: full, stallBlocks: 14}
	s.addPeer(p)
	s.runUntil(10*time.Minute, s.tipIs(full[40]))

	want := []time.Duration{2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 64, 64, 64, 64, 2, 2}
	for i := range want {
		want[i] *= time.Second
	}
	got := p.blockTimeouts
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("block request timeouts %v, want prefix %v", got, want)
	}
	for _, d := range got[len(want):] {
		if d != StallTimeout {
			t.Errorf("timeout %v after answers, want %v (all %v)", d, StallTimeout, got)
		}
	}
	if n := s.penalized("slow", OffenseStall); n != 7 {
		t.Errorf("%d stall penalties, want 7 (one per timeout level): %+v", n, s.penalties)
	}
}

// A stalled peer's requests go to a healthy peer at once, and the staller
// gets no more work while a healthy peer can serve.
func TestCoreStalledPeerReplaced(t *testing.T) {
	full := genChain(nil, 200, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	dead := &simPeer{id: "dead", chain: full, stallBlocks: 1 << 30}
	s.addPeer(dead)
	// Let the dead peer be the header source and take the first requests.
	s.runUntil(time.Second, func() bool { return dead.blockReqs > 0 })
	s.addPeer(&simPeer{id: "good", chain: full})
	s.runUntil(30*time.Second, s.tipIs(full[200]))
	if dead.blockReqs > 4 {
		t.Errorf("stalled peer got %d block requests; want it replaced after its stall", dead.blockReqs)
	}
	if s.penalized("dead", OffenseStall) == 0 {
		t.Error("stall not penalized")
	}
}

// A peer on a longer fork that contains an invalid block: the block's
// sender and the header source are penalized and dropped as sync sources;
// the node then follows the honest chain (a reorg off the fork's valid
// prefix).
func TestCoreInvalidBlockThenHonestChain(t *testing.T) {
	main := genChain(nil, 300, "main")
	fork := genChain(main[:51], 400, "evil") // heights 51..450 differ
	s := newSim(t, main[:1], CoreConfig{NoPoolSync: true})
	s.chain.invalid[fork[100].ID] = true
	evil := &simPeer{id: "evil", chain: fork}
	s.addPeer(evil)
	s.runUntil(30*time.Second, func() bool { return s.penalized("evil", OffenseInvalidBlock) > 0 })
	if h, _ := s.chain.Tip(); h != 99 {
		t.Fatalf("tip %d after the invalid block, want 99 (the fork's valid prefix)", h)
	}
	s.addPeer(&simPeer{id: "honest", chain: main})
	s.runUntil(30*time.Second, s.tipIs(main[300]))
	if evil.blockReqs == 0 {
		t.Fatal("evil served nothing?")
	}
	before := evil.blockReqs
	s.runUntil(2*TipPollInterval, func() bool { return s.now.Sub(t0) > 2*TipPollInterval })
	if evil.blockReqs != before {
		t.Errorf("bad peer still used as a block source")
	}
	if n := s.penalized("honest", OffenseInvalidBlock) + s.penalized("honest", OffenseMismatch); n != 0 {
		t.Errorf("honest peer penalized: %+v", s.penalties)
	}
}

// Headers that do not link, more headers or blocks than asked for, and
// headers that connect to nothing we named are all offenses.
func TestCoreHeaderOffenses(t *testing.T) {
	full := genChain(nil, 50, "main")
	other := genChain([]HeaderInfo{{ID: wire.ID{1}}}, 50, "other") // another genesis: connects to nothing
	cases := []struct {
		name string
		hs   func(max int) []HeaderInfo
		want Offense
	}{
		{"broken link", func(int) []HeaderInfo {
			hs := slices.Clone(full[1:11])
			hs[5].Parent[0] ^= 1
			return hs
		}, OffenseBadHeaders},
		{"wrong height", func(int) []HeaderInfo {
			hs := slices.Clone(full[1:11])
			hs[3].Height = 99
			return hs
		}, OffenseBadHeaders},
		{"unconnected", func(int) []HeaderInfo { return other[1:20] }, OffenseBadHeaders},
		{"too many", func(max int) []HeaderInfo { return genChain(nil, max+1, "x")[1:] }, OffenseUnrequested},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCore(CoreConfig{NoPoolSync: true}, newFakeChain(full[:1]), &fakePool{}, t0)
			c.AddPeer("p", t0)
			tip := c.Actions()[0].(*GetTip)
			c.TipResult(tip.Req, Tip{Height: 50, ID: full[50].ID}, nil, t0)
			var gh *GetHeaders
			for _, a := range c.Actions() {
				if x, ok := a.(*GetHeaders); ok {
					gh = x
				}
			}
			if gh == nil {
				t.Fatal("no headers request")
			}
			c.HeadersResult(gh.Req, tc.hs(gh.Max), nil, t0)
			var got []Offense
			for _, a := range c.Actions() {
				if p, ok := a.(*Penalize); ok {
					got = append(got, p.Offense)
				}
				if _, ok := a.(*GetBlocks); ok {
					t.Errorf("bodies requested for rejected headers")
				}
			}
			if !slices.Equal(got, []Offense{tc.want}) {
				t.Errorf("penalties %v, want [%v]", got, tc.want)
			}
		})
	}
}

func TestCoreUnrequestedAndUnknownAnswers(t *testing.T) {
	full := genChain(nil, 20, "main")
	c := NewCore(CoreConfig{NoPoolSync: true}, newFakeChain(full[:1]), &fakePool{}, t0)
	c.AddPeer("p", t0)
	tip := c.Actions()[0].(*GetTip)
	// An answer to a request never made is dropped silently.
	c.BlocksResult(9999, []Block{{Info: full[1]}}, nil, t0)
	c.TipResult(tip.Req, Tip{Height: 20, ID: full[20].ID}, nil, t0)
	gh := c.Actions()[0].(*GetHeaders)
	c.HeadersResult(gh.Req, full[1:], nil, t0)
	var gb *GetBlocks
	for _, a := range c.Actions() {
		if x, ok := a.(*GetBlocks); ok && gb == nil {
			gb = x
		}
	}
	if gb == nil || gb.Start != 1 || gb.Count != BlocksPerRequest {
		t.Fatalf("first block request %+v", gb)
	}
	var bs []Block
	for h := 1; h <= gb.Count+1; h++ {
		bs = append(bs, Block{Info: full[h], Body: blockBody(full[h].ID)})
	}
	c.BlocksResult(gb.Req, bs, nil, t0)
	acts := c.Actions()
	if p, ok := acts[0].(*Penalize); !ok || p.Offense != OffenseUnrequested {
		t.Fatalf("want an unrequested penalty first, got %#v", acts)
	}
	// The blocks were not taken: the range is requested again, after the
	// offender's FailBackoff (it is the only peer).
	again := func(acts []Action) bool {
		for _, a := range acts {
			if _, ok := a.(*ConnectBlock); ok {
				t.Error("connected a block from a rejected answer")
			}
			if x, ok := a.(*GetBlocks); ok && x.Start == 1 {
				return true
			}
		}
		return false
	}
	if again(acts) {
		t.Error("range requested again at once from the offender")
	}
	if c.NextDeadline().After(t0.Add(FailBackoff)) {
		t.Errorf("next deadline %v, want the end of the backoff", c.NextDeadline().Sub(t0))
	}
	c.Tick(t0.Add(FailBackoff))
	if !again(c.Actions()) {
		t.Error("range not requested again after the backoff")
	}
}

// A disconnected peer's requests are reassigned at once.
func TestCoreRemovePeerReassigns(t *testing.T) {
	full := genChain(nil, 100, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	a := &simPeer{id: "a", chain: full, stallBlocks: 1 << 30}
	s.addPeer(a)
	s.addPeer(&simPeer{id: "b", chain: full, latency: time.Second})
	s.runUntil(5*time.Second, func() bool { return a.blockReqs > 0 })
	s.core.RemovePeer("a", s.now)
	s.process()
	start := s.now
	s.runUntil(time.Minute, s.tipIs(full[100]))
	if s.penalized("a", OffenseStall) != 0 {
		t.Error("the removed peer was timed out instead of reassigned")
	}
	t.Logf("rest of the sync took %v", s.now.Sub(start))
}

// Blocks the node already got (by gossip) are skipped, not fetched again
// or re-added.
func TestCoreSkipsBlocksAlreadyHeld(t *testing.T) {
	full := genChain(nil, 60, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	p := &simPeer{id: "p", chain: full, latency: time.Second}
	s.addPeer(p)
	s.runUntil(5*time.Second, func() bool { return len(s.core.hdrs) > 0 })
	for h := 1; h <= 30; h++ { // gossip delivers 1..30 meanwhile
		s.chain.add(full[h])
	}
	adds := s.chain.adds
	s.runUntil(time.Minute, s.tipIs(full[60]))
	if got := s.chain.adds - adds; got != 30 {
		t.Errorf("%d adds after gossip delivered half, want 30", got)
	}
}

// The download window and buffers are bounded even when the block at the
// connect point is held up by a slow peer.
func TestCoreWindowBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("3000-block sync")
	}
	full := genChain(nil, 3000, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	var ps []*simPeer
	for i := range 6 {
		p := &simPeer{id: peerID(i), chain: full, latency: time.Duration(10+i*5) * time.Millisecond}
		ps = append(ps, p)
		s.addPeer(p)
	}
	ps[0].stallBlocks = 2 // the first ranges (connect point) stall
	s.runUntil(5*time.Minute, s.tipIs(full[3000]))
	if s.maxAhead > DownloadWindow {
		t.Errorf("requested %d past the connect point", s.maxAhead)
	}
	if s.core.stats.HeadersReceived < 3000 {
		t.Errorf("headers %d", s.core.stats.HeadersReceived)
	}
	t.Logf("3000 blocks over 6 peers in %v simulated, max %d ahead", s.now.Sub(t0), s.maxAhead)
}

func peerID(i int) transport.PeerID { return transport.PeerID(string(rune('a'+i)) + "-peer") }

// Locators: dense at the top, doubling below, genesis last, capped.
func TestCoreLocator(t *testing.T) {
	full := genChain(nil, 100000, "main")
	c := NewCore(CoreConfig{}, newFakeChain(full), &fakePool{}, t0)
	loc := c.locator()
	if len(loc) > MaxLocatorIDs {
		t.Fatalf("locator of %d ids", len(loc))
	}
	if loc[0] != full[100000].ID || loc[len(loc)-1] != full[0].ID {
		t.Fatal("locator must start at the tip and end at genesis")
	}
	for i := 0; i < locatorDense; i++ {
		if loc[i] != full[100000-i].ID {
			t.Fatalf("locator[%d] not dense", i)
		}
	}
	if len(loc) > 40 {
		t.Errorf("locator of %d ids for 100000 blocks, want ~log2", len(loc))
	}
	short := NewCore(CoreConfig{}, newFakeChain(full[:4]), &fakePool{}, t0).locator()
	want := []wire.ID{full[3].ID, full[2].ID, full[1].ID, full[0].ID}
	if !slices.Equal(short, want) {
		t.Errorf("short locator %v", short)
	}
}

// A body that does not validate although its id matches (mutated) blames
// its sender only: the header source is honest, the body is fetched again
// from another peer.
func TestCoreTamperedBodyBlamesSenderOnly(t *testing.T) {
	full := genChain(nil, 120, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	src := &simPeer{id: "src", chain: full, latency: 100 * time.Millisecond}
	s.addPeer(src)
	s.runUntil(time.Second, func() bool { return len(s.core.hdrs) > 0 })
	tamper := &simPeer{id: "tamper", chain: full, latency: time.Millisecond, tamperAt: map[uint64]bool{}}
	for h := uint64(1); h <= 120; h++ {
		tamper.tamperAt[h] = true
	}
	s.addPeer(tamper)
	s.runUntil(time.Minute, s.tipIs(full[120]))
	if s.penalized("tamper", OffenseInvalidBlock) == 0 {
		t.Error("tampering peer not penalized")
	}
	if n := s.penalized("src", OffenseInvalidBlock); n != 0 {
		t.Errorf("honest header source penalized %d times", n)
	}
}

// Txs the pool ignores on arrival (a nonce gap: their predecessor came in
// a later batch) are offered again once the fetches are done.
func TestCorePoolRetriesIgnored(t *testing.T) {
	full := genChain(nil, 1, "main")
	s := newSim(t, full, CoreConfig{})
	// 600 txs in one chain of dependencies, listed in id (random) order:
	// most are ignored on arrival and need several passes.
	pool := poolOf(0, 600)
	s.pool.after = map[wire.ID]wire.ID{}
	for i := 1; i < 600; i++ {
		s.pool.after[txID(txBody(i))] = txID(txBody(i - 1))
	}
	s.addPeer(&simPeer{id: "p", chain: full, pool: pool})
	s.runUntil(time.Minute, func() bool { return len(s.pool.txs) == 600 })
	if st := s.core.Stats(); st.TxsAdded != 600 || len(s.core.retry) != 0 {
		t.Errorf("stats %+v, %d left to retry", st, len(s.core.retry))
	}
	// A tx that can never be added is given up after a pass without
	// progress.
	s.pool.after[txID(txBody(1000))] = wire.ID{9}
	p2 := &simPeer{id: "q", chain: full, pool: poolOf(1000, 1001)}
	s.addPeer(p2)
	s.runUntil(time.Minute, func() bool {
		return s.core.stats.TxsFetched == 601 && len(s.core.retry) == 0 && s.core.retryLeft == 0
	})
}

// A peer that refuses requests (busy) is not asked again before
// FailBackoff, and a refusal is not a stall.
func TestCoreRefusalBacksOff(t *testing.T) {
	full := genChain(nil, 30, "main")
	s := newSim(t, full[:1], CoreConfig{NoPoolSync: true})
	p := &simPeer{id: "busy", chain: full, refuse: 4}
	s.addPeer(p)
	s.runUntil(time.Minute, s.tipIs(full[30]))
	// Requests go out in pipelined pairs; after each refused pair the
	// next pair waits FailBackoff.
	for i := 2; i < 6; i += 2 {
		if gap := p.blockTimes[i].Sub(p.blockTimes[i-1]); gap < FailBackoff {
			t.Errorf("request %d sent %v after a refusal", i, gap)
		}
	}
	if n := len(s.penalties); n != 0 {
		t.Errorf("refusals penalized: %+v", s.penalties)
	}
}

// A peer that forks off our chain deeper than the sparse part of our
// locator can name answers with a full message of headers we hold; the
// next request continues from the last of them instead of asking the same
// again, and the node reorganizes onto the longer fork.
func TestCoreDeepForkLocatorGap(t *testing.T) {
	if testing.Short() {
		t.Skip("26000-block chains")
	}
	ours := genChain(nil, 20000, "main")
	theirs := genChain(ours[:15001], 6000, "fork") // tip 21000
	s := newSim(t, ours, CoreConfig{NoPoolSync: true})
	p := &simPeer{id: "p", chain: theirs, latency: 5 * time.Millisecond}
	s.addPeer(p)
	s.runUntil(10*time.Minute, s.tipIs(theirs[21000]))
	if st := s.core.Stats(); st.HeadersReceived > 2*MaxHeadersPerRequest+6000 {
		t.Errorf("%d headers received for a 6000-block fork", st.HeadersReceived)
	}
}
