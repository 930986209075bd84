package relay

import (
	"errors"
	"slices"
	"testing"

	"github.com/rumor-relay/rumor/relay/wire"
)

// jobWorld is a scripted chain, pool and network for driving a blockJob
// without any of them: every answer a step needs comes from its fields.
type jobWorld struct {
	headerErr error
	tip       uint64
	pushOK    bool
	forwardOK bool
	inPool    map[int]bool // positions (of the block) the pool finds by short id
	txnFails  bool
	assembles func(txs [][]byte) bool // nil: every assembly matches
	whole     []byte                  // nil: a whole-block fetch fails
	wholeFrom PeerID
	wholeBad  bool
	adds      []Verdict // answers to successive stepAdd; the last repeats
	stored    ID        // the ancestor the walk ends at
	ancestors map[ID]jobAncestor
	ancFail   Verdict // answer to stepAddAncestors (0: all stored)
}

type jobAncestor struct {
	block []byte
	info  HeaderInfo
	err   error
}

// jobTrace is what a job asked for.
type jobTrace struct {
	steps     []blockStepKind
	penalties []string // "peer:offense"
	forwarded bool
	fetched   [][]uint32     // indexes of each stepFetchTxn
	asked     []PeerID       // peer asked first by each stepFetchAncestor
	added     [][]byte       // blocks of each stepAdd
	ancestors [][]HeaderInfo // each stepAddAncestors, in order
	verdict   Verdict
}

func (w *jobWorld) drive(t *testing.T, j *blockJob) jobTrace {
	t.Helper()
	var tr jobTrace
	s := j.start()
	for range 100 {
		tr.steps = append(tr.steps, s.kind)
		if s.offense != 0 {
			tr.penalties = append(tr.penalties, string(s.penalize)+":"+s.offense.String())
		}
		switch s.kind {
		case stepDone:
			tr.verdict = s.verdict
			return tr
		case stepVerifyHeader:
			s = j.headerChecked(w.headerErr, w.tip)
		case stepVerifyPushBody:
			s = j.pushBodyChecked(w.pushOK)
		case stepTryForward:
			s = j.forwardTried(w.forwardOK)
		case stepForward:
			tr.forwarded = true
			s = *s.next
		case stepLookup:
			found := make([][]byte, len(s.short))
			for i, p := range j.pos {
				if w.inPool[int(p)] {
					found[i] = txAt(int(p))
				}
			}
			s = j.looked(found)
		case stepFetchTxn:
			tr.fetched = append(tr.fetched, slices.Clone(s.fetch.indexes))
			if w.txnFails {
				s = j.txnFetched(nil)
				break
			}
			var bodies [][]byte
			for _, p := range s.fetch.indexes {
				bodies = append(bodies, txAt(int(p)))
			}
			s = j.txnFetched(bodies)
		case stepAssemble:
			ok := w.assembles == nil || w.assembles(s.txs)
			s = j.assembled([]byte("assembled"), ok)
		case stepFetchBlock:
			s = j.blockFetched(w.whole, w.wholeFrom, !w.wholeBad)
		case stepAdd:
			tr.added = append(tr.added, s.block)
			v := w.adds[0]
			if len(w.adds) > 1 {
				w.adds = w.adds[1:]
			}
			s = j.added(v)
		case stepAncestor:
			s = j.ancestorLookup(s.id == w.stored)
		case stepFetchAncestor:
			tr.asked = append(tr.asked, s.from)
			a, ok := w.ancestors[s.id]
			if !ok {
				s = j.ancestorFetched(nil, HeaderInfo{}, nil)
				break
			}
			s = j.ancestorFetched(a.block, a.info, a.err)
		case stepAddAncestors:
			tr.ancestors = append(tr.ancestors, slices.Clone(s.infos))
			v := w.ancFail
			if v == 0 {
				v = Accepted
			}
			s = j.ancestorsAdded(v)
		default:
			t.Fatalf("unknown step %d", s.kind)
		}
	}
	t.Fatal("job did not end in 100 steps")
	return tr
}

func txAt(i int) []byte { return []byte{'t', 'x', byte(i)} }

// idOf names test blocks by a number.
func idOf(n byte) ID { return ID{n} }

// compactOfTest is a compact block of n txs, those at prefilled positions
// travelling whole.
func compactOfTest(n int, prefilled ...int) *wire.CompactBlock {
	c := &wire.CompactBlock{Header: []byte("header"), Nonce: 7}
	for i := range n {
		if slices.Contains(prefilled, i) {
			c.Prefilled = append(c.Prefilled, wire.PrefilledTx{Index: uint32(i), Tx: txAt(i)})
			continue
		}
		c.ShortIDs = append(c.ShortIDs, uint64(1000+i))
	}
	return c
}

// ancestorChain makes blocks 9, 8, ... (newest first) each 100 bytes,
// block n's parent being n-1; block 10 is the announced one.
func ancestorChain(n int) map[ID]jobAncestor {
	m := make(map[ID]jobAncestor)
	for k := byte(9); k > byte(9-n); k-- {
		m[idOf(k)] = jobAncestor{block: make([]byte, 100), info: HeaderInfo{ID: idOf(k), Parent: idOf(k - 1), Height: uint64(k)}}
	}
	return m
}

var errBadSig = errors.New("bad signature")

// badSecondAncestor is a walk whose first ancestor (9) is sound and whose
// second (8) has a header that does not verify.
func badSecondAncestor() map[ID]jobAncestor {
	return map[ID]jobAncestor{
		idOf(9): {block: []byte("b9"), info: HeaderInfo{ID: idOf(9), Parent: idOf(8)}},
		idOf(8): {block: []byte("b8"), info: HeaderInfo{ID: idOf(8), Parent: idOf(7)}, err: errBadSig},
	}
}

func TestBlockJobDecisions(t *testing.T) {
	announced := HeaderInfo{ID: idOf(10), Parent: idOf(9), Height: 10}
	lim := blockJobLimits{
		maxOrphanDepth: 3, maxAncestorBytes: 1000,
		maxBlockTxs: 8, maxTxBytes: 100, maxBlockBytes: 1000,
		authenticates: true,
	}
	noAuth := lim
	noAuth.authenticates = false
	storeFirst := lim
	storeFirst.storeBeforeForward = true
	tight := lim
	tight.maxAncestorBytes = 250

	const (
		vh  = stepVerifyHeader
		vp  = stepVerifyPushBody
		tf  = stepTryForward
		fw  = stepForward
		lk  = stepLookup
		ft  = stepFetchTxn
		as  = stepAssemble
		fb  = stepFetchBlock
		add = stepAdd
		an  = stepAncestor
		fa  = stepFetchAncestor
		aa  = stepAddAncestors
		end = stepDone
	)
	pooled := map[int]bool{0: true, 1: true, 2: true, 3: true}
	cases := []struct {
		name      string
		ann       wire.BlockAnnounce
		info      HeaderInfo // zero: announced
		lim       blockJobLimits
		world     jobWorld
		steps     []blockStepKind
		verdict   Verdict
		penalties []string
		forwarded bool
		fetched   [][]uint32
		added     int // stepAdd count
		ancestors [][]ID
	}{
		{
			name: "compact, every tx in the pool: forwarded, no fetch",
			ann:  compactOfTest(4), lim: lim,
			world:   jobWorld{tip: 9, forwardOK: true, inPool: pooled, adds: []Verdict{Accepted}},
			steps:   []blockStepKind{vh, tf, fw, lk, as, add, end},
			verdict: Accepted, forwarded: true, added: 1,
		},
		{
			name: "compact, two txs missing: fetched by index from the announcer",
			ann:  compactOfTest(4, 0), lim: lim,
			world:   jobWorld{tip: 9, forwardOK: true, inPool: map[int]bool{2: true}, adds: []Verdict{Accepted}},
			steps:   []blockStepKind{vh, tf, fw, lk, ft, as, add, end},
			verdict: Accepted, forwarded: true, fetched: [][]uint32{{1, 3}}, added: 1,
		},
		{
			name: "compact, missing txs not served: ignored, nobody blamed here",
			ann:  compactOfTest(2), lim: lim,
			world:   jobWorld{tip: 9, inPool: map[int]bool{}, txnFails: true},
			steps:   []blockStepKind{vh, tf, lk, ft, end},
			verdict: Ignored, fetched: [][]uint32{{0, 1}},
		},
		{
			name: "short-id collision: a wrong pool tx, then the whole block",
			ann:  compactOfTest(4), lim: lim,
			world: jobWorld{tip: 9, inPool: pooled, assembles: func([][]byte) bool { return false },
				whole: []byte("whole"), wholeFrom: "p2", adds: []Verdict{Accepted}},
			steps:   []blockStepKind{vh, tf, lk, as, fb, add, end},
			verdict: Accepted, added: 1,
		},
		{
			name: "rebuilt block the chain refuses: whole block fetched once, the proposer's fault",
			ann:  compactOfTest(4), lim: lim,
			world:   jobWorld{tip: 9, inPool: pooled, whole: []byte("whole"), wholeFrom: "p2", adds: []Verdict{Invalid}},
			steps:   []blockStepKind{vh, tf, lk, as, add, fb, add, end},
			verdict: Invalid, added: 2,
		},
		{
			name: "invalid block without header authentication: the announcer vouched for it",
			ann:  compactOfTest(4), lim: noAuth,
			world:   jobWorld{tip: 9, inPool: pooled, whole: []byte("whole"), wholeFrom: "p2", adds: []Verdict{Invalid}},
			steps:   []blockStepKind{vh, lk, as, add, fb, add, end},
			verdict: Invalid, added: 2,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "invalid block forwarded early: nobody pays",
			ann:  compactOfTest(4), lim: lim,
			world:   jobWorld{tip: 9, forwardOK: true, inPool: pooled, whole: []byte("whole"), adds: []Verdict{Invalid}},
			steps:   []blockStepKind{vh, tf, fw, lk, as, add, fb, add, end},
			verdict: Invalid, forwarded: true, added: 2,
		},
		{
			name: "whole block that does not match its header: its server pays",
			ann:  compactOfTest(4), lim: lim,
			world: jobWorld{tip: 9, inPool: pooled, assembles: func([][]byte) bool { return false },
				whole: []byte("whole"), wholeFrom: "p2", wholeBad: true},
			steps:     []blockStepKind{vh, tf, lk, as, fb, end},
			verdict:   Ignored,
			penalties: []string{"p2:body_mismatch"},
		},
		{
			name: "all prefilled and not matching: invalid at once, nothing was guessed",
			ann:  compactOfTest(2, 0, 1), lim: lim,
			world:   jobWorld{tip: 9, assembles: func([][]byte) bool { return false }},
			steps:   []blockStepKind{vh, tf, as, end},
			verdict: Invalid,
		},
		{
			name: "header does not verify: the announcer pays, nothing fetched",
			ann:  compactOfTest(4), lim: lim,
			world:     jobWorld{headerErr: errBadSig, tip: 9},
			steps:     []blockStepKind{vh, end},
			verdict:   Invalid,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "too far ahead for an ancestor walk: an orphan for sync",
			ann:  compactOfTest(4), lim: lim,
			world:   jobWorld{tip: 5},
			steps:   []blockStepKind{vh, end},
			verdict: Orphan,
		},
		{
			name: "over the chain's tx limit: the announcer pays",
			ann:  compactOfTest(9), lim: lim,
			world:     jobWorld{tip: 9},
			steps:     []blockStepKind{vh, end},
			verdict:   Invalid,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "prefilled tx over the chain's size limit: the announcer pays",
			ann: &wire.CompactBlock{Header: []byte("header"),
				Prefilled: []wire.PrefilledTx{{Index: 0, Tx: make([]byte, 101)}}},
			lim:       lim,
			world:     jobWorld{tip: 9},
			steps:     []blockStepKind{vh, end},
			verdict:   Invalid,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "pushed body not matching its header: its sender made it up",
			ann:  &wire.BlockPush{Block: []byte("block")}, lim: lim,
			world:     jobWorld{tip: 9},
			steps:     []blockStepKind{vh, vp, end},
			verdict:   Invalid,
			penalties: []string{"a:body_mismatch"},
		},
		{
			name: "pushed block over the size limit",
			ann:  &wire.BlockPush{Block: make([]byte, 1001)}, lim: lim,
			world:     jobWorld{tip: 9},
			steps:     []blockStepKind{vh, end},
			verdict:   Invalid,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "pushed block, stored before it is forwarded",
			ann:  &wire.BlockPush{Block: []byte("block")}, lim: storeFirst,
			world:   jobWorld{tip: 9, pushOK: true, forwardOK: true, adds: []Verdict{Accepted}},
			steps:   []blockStepKind{vh, vp, add, end},
			verdict: Accepted, added: 1,
		},
		{
			name: "pushed block the chain refuses: no second fetch of what came whole",
			ann:  &wire.BlockPush{Block: []byte("block")}, lim: lim,
			world:   jobWorld{tip: 9, pushOK: true, forwardOK: true, whole: []byte("whole"), adds: []Verdict{Invalid}},
			steps:   []blockStepKind{vh, vp, tf, fw, add, end},
			verdict: Invalid, forwarded: true, added: 1,
		},
		{
			name: "pulled block the chain refuses: fetched once",
			ann:  &wire.BlockPull{Header: []byte("header")}, lim: lim,
			world:   jobWorld{tip: 9, whole: []byte("whole"), wholeFrom: "a", adds: []Verdict{Invalid}},
			steps:   []blockStepKind{vh, tf, fb, add, end},
			verdict: Invalid, added: 1,
		},
		{
			name: "short-id collision, whole block not served: ignored",
			ann:  compactOfTest(4), lim: lim,
			world:   jobWorld{tip: 9, inPool: pooled, assembles: func([][]byte) bool { return false }},
			steps:   []blockStepKind{vh, tf, lk, as, fb, end},
			verdict: Ignored,
		},
		{
			name: "pulled block not matching its header: the server pays",
			ann:  &wire.BlockPull{Header: []byte("header")}, lim: lim,
			world:     jobWorld{tip: 9, whole: []byte("whole"), wholeFrom: "a", wholeBad: true},
			steps:     []blockStepKind{vh, tf, fb, end},
			verdict:   Ignored,
			penalties: []string{"a:body_mismatch"},
		},
		{
			name: "pushed block the chain refuses, headers not authenticated: the sender pays",
			ann:  &wire.BlockPush{Block: []byte("block")}, lim: noAuth,
			world:   jobWorld{tip: 9, pushOK: true, adds: []Verdict{Invalid}},
			steps:   []blockStepKind{vh, vp, add, end},
			verdict: Invalid, added: 1,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "orphan with MaxOrphanDepth 0: no walk, sync's job",
			ann:  compactOfTest(4), lim: func() blockJobLimits { l := lim; l.maxOrphanDepth = 0; return l }(),
			world:   jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan}},
			steps:   []blockStepKind{vh, tf, lk, as, add, end},
			verdict: Orphan, added: 1,
		},
		{
			name: "second ancestor's header does not verify: the walk stops there",
			ann:  compactOfTest(4), lim: lim,
			world: jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan}, stored: idOf(1),
				ancestors: badSecondAncestor()},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, fa, an, fa, end},
			verdict: Orphan, added: 1,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "pull: the whole block from the announcer",
			ann:  &wire.BlockPull{Header: []byte("header")}, lim: lim,
			world:   jobWorld{tip: 9, whole: []byte("whole"), wholeFrom: "a", adds: []Verdict{Accepted}},
			steps:   []blockStepKind{vh, tf, fb, add, end},
			verdict: Accepted, added: 1,
		},
		{
			name: "orphan: ancestors fetched until one's parent is stored, added oldest first",
			ann:  compactOfTest(4), lim: lim,
			world: jobWorld{tip: 7, inPool: pooled, adds: []Verdict{Orphan, Accepted},
				stored: idOf(7), ancestors: ancestorChain(2)},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, fa, an, fa, an, aa, add, end},
			verdict: Accepted, added: 2,
			ancestors: [][]ID{{idOf(8), idOf(9)}},
		},
		{
			name: "orphan deeper than MaxOrphanDepth: exactly that many fetched",
			ann:  compactOfTest(4), lim: lim,
			world: jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan},
				stored: idOf(1), ancestors: ancestorChain(9)},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, fa, an, fa, an, fa, an, end},
			verdict: Orphan, added: 1,
		},
		{
			name: "orphan whose ancestors pass MaxAncestorBytes: the walk stops",
			ann:  compactOfTest(4), lim: tight,
			world: jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan},
				stored: idOf(1), ancestors: ancestorChain(9)},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, fa, an, fa, an, fa, end},
			verdict: Orphan, added: 1,
		},
		{
			name: "ancestor whose header does not verify: the block's sender pays",
			ann:  compactOfTest(4), lim: lim,
			world: jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan}, stored: idOf(1),
				ancestors: map[ID]jobAncestor{idOf(9): {block: []byte("b9"), info: HeaderInfo{ID: idOf(9), Parent: idOf(8)}, err: errBadSig}}},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, fa, end},
			verdict: Orphan, added: 1,
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "ancestor the chain refuses, headers not authenticated: the sender pays",
			ann:  compactOfTest(4), lim: noAuth,
			world: jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan}, stored: idOf(8),
				ancestors: ancestorChain(1), ancFail: Invalid},
			steps:   []blockStepKind{vh, lk, as, add, an, fa, an, aa, end},
			verdict: Orphan, added: 1,
			ancestors: [][]ID{{idOf(9)}},
			penalties: []string{"a:invalid_block"},
		},
		{
			name: "ancestor the chain refuses, headers authenticated: nobody pays",
			ann:  compactOfTest(4), lim: lim,
			world: jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan}, stored: idOf(8),
				ancestors: ancestorChain(1), ancFail: Invalid},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, fa, an, aa, end},
			verdict: Orphan, added: 1,
			ancestors: [][]ID{{idOf(9)}},
		},
		{
			name: "orphan whose parent arrived meanwhile: added again, no fetch",
			ann:  compactOfTest(4), lim: lim,
			world:   jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan, Accepted}, stored: idOf(9)},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, add, end},
			verdict: Accepted, added: 2,
		},
		{
			name: "still an orphan after the walk: no second walk",
			ann:  compactOfTest(4), lim: lim,
			world:   jobWorld{tip: 9, inPool: pooled, adds: []Verdict{Orphan}, stored: idOf(9)},
			steps:   []blockStepKind{vh, tf, lk, as, add, an, add, end},
			verdict: Orphan, added: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := tc.info
			if info == (HeaderInfo{}) {
				info = announced
			}
			j := newBlockJob("a", []byte("header"), info, tc.ann, tc.lim)
			tr := tc.world.drive(t, j)
			if !slices.Equal(tr.steps, tc.steps) {
				t.Errorf("steps %v, want %v", tr.steps, tc.steps)
			}
			if tr.verdict != tc.verdict {
				t.Errorf("verdict %v, want %v", tr.verdict, tc.verdict)
			}
			if !slices.Equal(tr.penalties, tc.penalties) {
				t.Errorf("penalties %v, want %v", tr.penalties, tc.penalties)
			}
			if tr.forwarded != tc.forwarded {
				t.Errorf("forwarded %v, want %v", tr.forwarded, tc.forwarded)
			}
			if !slices.EqualFunc(tr.fetched, tc.fetched, slices.Equal) {
				t.Errorf("fetched indexes %v, want %v", tr.fetched, tc.fetched)
			}
			if len(tr.added) != tc.added {
				t.Errorf("%d adds, want %d", len(tr.added), tc.added)
			}
			var anc [][]ID
			for _, infos := range tr.ancestors {
				var ids []ID
				for _, in := range infos {
					ids = append(ids, in.ID)
				}
				anc = append(anc, ids)
			}
			if !slices.EqualFunc(anc, tc.ancestors, slices.Equal) {
				t.Errorf("ancestors added %v, want %v", anc, tc.ancestors)
			}
		})
	}
}

// TestBlockJobRebuildPlacesTxs: a rebuilt block holds the prefilled txs,
// the pool's and the fetched ones each at its own position.
func TestBlockJobRebuildPlacesTxs(t *testing.T) {
	w := jobWorld{tip: 9, inPool: map[int]bool{1: true, 4: true}, adds: []Verdict{Accepted}}
	var got [][]byte
	w.assembles = func(txs [][]byte) bool { got = slices.Clone(txs); return true }
	j := newBlockJob("a", []byte("header"), HeaderInfo{ID: idOf(10), Parent: idOf(9), Height: 10}, compactOfTest(6, 0, 3), blockJobLimits{maxBlockTxs: 8, maxTxBytes: 100, authenticates: true})
	tr := w.drive(t, j)
	if tr.verdict != Accepted {
		t.Fatalf("verdict %v", tr.verdict)
	}
	if !slices.EqualFunc(tr.fetched, [][]uint32{{2, 5}}, slices.Equal) {
		t.Fatalf("fetched %v, want positions 2 and 5", tr.fetched)
	}
	for i := range 6 {
		if !slices.Equal(got[i], txAt(i)) {
			t.Fatalf("position %d holds %q", i, got[i])
		}
	}
}

// TestBlockJobFetchCarriesShortIDs: the indexes fetched carry the
// short ids the announcement gave for them, so the server can be checked.
func TestBlockJobFetchCarriesShortIDs(t *testing.T) {
	a := compactOfTest(5, 1)
	j := newBlockJob("a", []byte("header"), HeaderInfo{ID: idOf(10), Height: 10}, a, blockJobLimits{maxBlockTxs: 8, maxTxBytes: 100})
	s := j.start()
	s = j.headerChecked(nil, 9)
	if s.kind != stepLookup {
		t.Fatalf("step %v, want a pool lookup", s.kind)
	}
	s = j.looked([][]byte{txAt(0)}) // position 0 found; 2, 3, 4 missing
	if s.kind != stepFetchTxn || s.from != "a" || s.id != idOf(10) {
		t.Fatalf("step %+v, want a fetch from the announcer", s)
	}
	if !slices.Equal(s.fetch.indexes, []uint32{2, 3, 4}) || !slices.Equal(s.fetch.short, []uint64{1002, 1003, 1004}) {
		t.Fatalf("fetch %v %v", s.fetch.indexes, s.fetch.short)
	}
	if s.fetch.key != wire.NewShortIDKey(a.Header, a.Nonce) {
		t.Fatal("fetch does not carry the announcement's short-id key")
	}
	// A short answer is a failed fetch, not a panic or a partial block.
	if s = j.txnFetched([][]byte{txAt(2)}); s.kind != stepDone || s.verdict != Ignored {
		t.Fatalf("short answer: %+v", s)
	}
}

// TestBlockJobWalkAsksTheBlocksSender: after a short-id collision the
// whole block comes from another peer (p2); the ancestors are asked of
// p2, which vouched for the chain it served, and a bad ancestor header
// costs p2, not the announcer.
func TestBlockJobWalkAsksTheBlocksSender(t *testing.T) {
	w := jobWorld{tip: 9, inPool: map[int]bool{0: true, 1: true, 2: true, 3: true},
		assembles: func([][]byte) bool { return false },
		whole:     []byte("whole"), wholeFrom: "p2", adds: []Verdict{Orphan}, stored: idOf(1),
		ancestors: badSecondAncestor()}
	lim := blockJobLimits{maxOrphanDepth: 3, maxAncestorBytes: 1000, maxBlockTxs: 8, maxTxBytes: 100, authenticates: true}
	j := newBlockJob("a", []byte("header"), HeaderInfo{ID: idOf(10), Parent: idOf(9), Height: 10}, compactOfTest(4), lim)
	tr := w.drive(t, j)
	if tr.verdict != Orphan {
		t.Fatalf("verdict %v, want orphan", tr.verdict)
	}
	if !slices.Equal(tr.asked, []PeerID{"p2", "p2"}) {
		t.Fatalf("ancestors asked of %v, want p2 twice", tr.asked)
	}
	if !slices.Equal(tr.penalties, []string{"p2:invalid_block"}) {
		t.Fatalf("penalties %v, want p2's", tr.penalties)
	}
}
