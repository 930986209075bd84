package relay

import (
	"github.com/rumor-relay/rumor/relay/wire"
)

// blockJob is the relay's decisions for one announced block, from its
// cheap checks to its verdict, free of I/O: no chain, pool, network, clock
// or goroutine of its own. Its driver (runBlockJob, blocks.go) asks it for a
// step, carries the step out against the chain, the pool and the fetcher,
// and feeds the outcome back through the method the step names; a step of
// kind stepDone carries the verdict. Any step may carry a penalty, which the
// driver reports before carrying the step out. A job is used by one
// goroutine at a time; table tests drive it with scripted outcomes
// (blockjob_test.go).
//
// The decisions, in order:
//
//   - Admission: a header that fails VerifyHeader costs its announcer
//     (OffenseInvalidBlock); a block more than MaxOrphanDepth+1 above our
//     tip is an Orphan for sync; an announcement over the chain's limits
//     costs its announcer; a pushed block whose body does not match its
//     header costs its sender (OffenseBodyMismatch: the proposer signed
//     only the header).
//   - Cut-through: with authenticated headers (HeaderVerifier) and
//     StoreBeforeForward off, a block whose parent is stored or being
//     brought in may be forwarded before it is stored, if the driver finds
//     an import slot; it is then brought in behind the announcement, and
//     an invalid block costs no one (the proposer signed it).
//   - Compact blocks: txs are taken from the announcement's prefill, then
//     from the pool by short id, then fetched by index from the announcer
//     (or another source). A rebuilt block that does not match its header
//     or that the chain finds invalid may hold a tx picked by a short-id
//     collision, so the whole block is fetched once before anyone is
//     blamed (BIP152).
//   - A whole block served by id whose body does not match its header
//     costs the peer that served it (honest peers serve only checked
//     bodies).
//   - Orphans: the ancestors are fetched by id from the peer that sent the
//     block, newest first, until one's parent is stored, within
//     MaxOrphanDepth blocks and MaxAncestorBytes; then they are added
//     oldest first and the block is added once more. An ancestor whose
//     header does not verify ends the walk and costs that peer.
//   - An invalid block, when headers are not authenticated and the block
//     was not forwarded early, costs its announcer.
type blockJob struct {
	info HeaderInfo
	hdr  []byte // the encoded header
	from PeerID // the announcer
	ann  wire.BlockAnnounce
	lim  blockJobLimits

	early bool // forwarded before it was stored

	// A compact block being rebuilt.
	key      wire.ShortIDKey
	txs      [][]byte // by position; nil until known
	pos      []uint32 // positions the short ids stand for, in order
	rebuilt  bool     // some positions came from short ids
	fetching *txnArg  // the positions being fetched
	whole    bool     // the whole block was asked for once

	// The block to add, and the peer it came from.
	block     []byte
	blockFrom PeerID
	walked    bool // the ancestor walk ran

	// The ancestor walk.
	cur   ID // the next ancestor wanted
	depth int
	size  int
	stack [][]byte // newest first
	infos []HeaderInfo
}

// blockJobLimits are the relay's settings a job decides by.
type blockJobLimits struct {
	maxOrphanDepth     int
	maxAncestorBytes   int
	maxBlockTxs        int
	maxTxBytes         int
	maxBlockBytes      int
	authenticates      bool // the chain verifies headers alone (HeaderVerifier)
	storeBeforeForward bool
}

// blockStepKind names what a job asks its driver to do.
type blockStepKind int

const (
	// stepVerifyHeader: authenticate the header and read our tip; answer
	// headerChecked.
	stepVerifyHeader blockStepKind = iota + 1
	// stepVerifyPushBody: check a pushed block's body against its header
	// and offer it to waiting requests; answer pushBodyChecked.
	stepVerifyPushBody
	// stepTryForward: see whether the parent is stored or being brought in
	// and take an import slot; answer forwardTried.
	stepTryForward
	// stepForward: accept the announcement now (it is forwarded) and carry
	// the job on, starting with next, on another goroutine.
	stepForward
	// stepLookup: look the short ids up in the pool; answer looked.
	stepLookup
	// stepFetchTxn: fetch the txs at fetch.indexes; answer txnFetched.
	stepFetchTxn
	// stepAssemble: assemble the block from txs, check the body against
	// the header and offer it; answer assembled.
	stepAssemble
	// stepFetchBlock: fetch the whole block by id; answer blockFetched.
	stepFetchBlock
	// stepAdd: add block to the chain (after its parent, if that is being
	// brought in); answer added.
	stepAdd
	// stepAncestor: wait for id if it is being brought in, then say
	// whether it is stored; answer ancestorLookup.
	stepAncestor
	// stepFetchAncestor: fetch block id and authenticate its header;
	// answer ancestorFetched.
	stepFetchAncestor
	// stepAddAncestors: add blocks in order, stopping at the first that is
	// neither Accepted nor Known; answer ancestorsAdded.
	stepAddAncestors
	// stepDone: the job is over with verdict.
	stepDone
)

// blockStep is one step a job asks for.
type blockStep struct {
	kind blockStepKind

	// Reported before the step is carried out (offense 0: none).
	penalize PeerID
	offense  Offense
	// note says why, for the driver's debug log ("" for routine steps),
	// with err when an answer carried one; a stepDone that ends the
	// ancestor walk names the ancestor in id.
	note string
	err  error

	id      ID           // stepFetchBlock, stepAncestor, stepFetchAncestor
	from    PeerID       // the peer to ask first; for stepAdd, the block's sender
	block   []byte       // stepAdd
	short   []uint64     // stepLookup
	fetch   *txnArg      // stepFetchTxn
	txs     [][]byte     // stepAssemble
	blocks  [][]byte     // stepAddAncestors, oldest first
	infos   []HeaderInfo // stepAddAncestors, matching blocks
	next    *blockStep   // stepForward: where the job goes on
	verdict Verdict      // stepDone
}

// newBlockJob starts the decisions for an announcement whose header parsed
// as info, which this node leads (no other job runs for the block).
func newBlockJob(from PeerID, hdr []byte, info HeaderInfo, ann wire.BlockAnnounce, lim blockJobLimits) *blockJob {
	return &blockJob{info: info, hdr: hdr, from: from, ann: ann, lim: lim}
}

// start is the first step: the header is authenticated before anything is
// fetched on the block's behalf, so a made-up block costs its announcer,
// not our uplink.
func (j *blockJob) start() blockStep { return blockStep{kind: stepVerifyHeader} }

// headerChecked takes VerifyHeader's answer and our tip height.
func (j *blockJob) headerChecked(err error, tip uint64) blockStep {
	switch {
	case err != nil:
		s := j.reject(j.from, OffenseInvalidBlock, Invalid, "announced header does not verify")
		s.err = err
		return s
	case j.info.Height > tip+uint64(j.lim.maxOrphanDepth)+1:
		// Too far ahead for an ancestor walk: a job for sync.
		return j.done(Orphan)
	case !j.withinLimits():
		return j.reject(j.from, OffenseInvalidBlock, Invalid, "announcement over the chain's limits")
	}
	if _, push := j.ann.(*wire.BlockPush); push {
		return blockStep{kind: stepVerifyPushBody}
	}
	return j.afterAdmission()
}

// withinLimits applies the chain's size limits to what the announcement
// carries, before it is forwarded or anything is fetched for it (the
// decoder has applied the wire's).
func (j *blockJob) withinLimits() bool {
	switch a := j.ann.(type) {
	case *wire.CompactBlock:
		if a.TxCount() > j.lim.maxBlockTxs {
			return false
		}
		for _, p := range a.Prefilled {
			if len(p.Tx) > j.lim.maxTxBytes {
				return false
			}
		}
	case *wire.BlockPush:
		return len(a.Block) <= j.lim.maxBlockBytes
	}
	return true
}

// pushBodyChecked takes whether a pushed block's body matches its header.
// Header and body came together, so whoever sent them made a mismatch up.
func (j *blockJob) pushBodyChecked(ok bool) blockStep {
	if !ok {
		return j.reject(j.from, OffenseBodyMismatch, Invalid, "pushed body does not match its header")
	}
	return j.afterAdmission()
}

// afterAdmission decides between cut-through and store-then-forward. The
// cheap checks prove something only when the chain authenticates headers.
func (j *blockJob) afterAdmission() blockStep {
	if j.lim.storeBeforeForward || !j.lim.authenticates {
		return j.bringIn()
	}
	return blockStep{kind: stepTryForward}
}

// forwardTried takes whether the block may go on now: its parent is stored
// or being brought in, and an import slot was free (the driver holds it
// until the job ends).
func (j *blockJob) forwardTried(ok bool) blockStep {
	if !ok {
		return j.bringIn()
	}
	j.early = true
	next := j.bringIn()
	return blockStep{kind: stepForward, next: &next}
}

// bringIn is the first step of getting the block itself.
func (j *blockJob) bringIn() blockStep {
	switch a := j.ann.(type) {
	case *wire.CompactBlock:
		return j.rebuild(a)
	case *wire.BlockPull:
		return j.fetchWhole()
	case *wire.BlockPush:
		j.block, j.blockFrom = a.Block, j.from
		return blockStep{kind: stepAdd, block: j.block, from: j.from}
	}
	return j.done(Invalid)
}

// rebuild lays out a compact block: prefilled txs at their positions, the
// other positions taking the short ids in order.
func (j *blockJob) rebuild(a *wire.CompactBlock) blockStep {
	j.key = wire.NewShortIDKey(a.Header, a.Nonce)
	j.txs = make([][]byte, a.TxCount())
	for _, p := range a.Prefilled {
		j.txs[p.Index] = p.Tx
	}
	for i := range j.txs {
		if j.txs[i] == nil {
			j.pos = append(j.pos, uint32(i))
		}
	}
	if len(j.pos) != len(a.ShortIDs) { // the decoder rules this out
		return j.done(Invalid)
	}
	j.rebuilt = len(j.pos) > 0
	if len(a.ShortIDs) == 0 {
		return j.assemble()
	}
	return blockStep{kind: stepLookup, short: a.ShortIDs}
}

// looked takes the pool's txs for the short ids (found[i] for ShortIDs[i],
// nil when absent; found may be short).
func (j *blockJob) looked(found [][]byte) blockStep {
	short := j.ann.(*wire.CompactBlock).ShortIDs
	arg := &txnArg{block: j.info.ID, key: j.key}
	for i, p := range j.pos {
		if i < len(found) && found[i] != nil {
			j.txs[p] = found[i]
			continue
		}
		arg.indexes = append(arg.indexes, p)
		arg.short = append(arg.short, short[i])
	}
	if len(arg.indexes) == 0 {
		return j.assemble()
	}
	j.fetching = arg
	return blockStep{kind: stepFetchTxn, id: j.info.ID, from: j.from, fetch: arg}
}

// txnFetched takes the fetched txs in the order asked (nil: the fetch
// failed, from every source).
func (j *blockJob) txnFetched(bodies [][]byte) blockStep {
	if bodies == nil || len(bodies) != len(j.fetching.indexes) {
		return j.done(Ignored)
	}
	for i, p := range j.fetching.indexes {
		j.txs[p] = bodies[i]
	}
	return j.assemble()
}

func (j *blockJob) assemble() blockStep { return blockStep{kind: stepAssemble, txs: j.txs} }

// assembled takes the assembled block and whether it matched its header
// (false when it did not assemble).
func (j *blockJob) assembled(block []byte, ok bool) blockStep {
	if ok {
		j.block, j.blockFrom = block, j.from
		return blockStep{kind: stepAdd, block: block, from: j.from}
	}
	if !j.rebuilt {
		// Every tx came with the announcement: nothing was guessed.
		return j.done(Invalid)
	}
	return j.fetchWhole()
}

// fetchWhole asks for the whole block by id, at most once per job.
func (j *blockJob) fetchWhole() blockStep {
	if j.whole {
		return j.done(Invalid)
	}
	j.whole = true
	note := ""
	if j.rebuilt {
		note = "compact block rebuilt invalid; fetching whole block"
	}
	return blockStep{kind: stepFetchBlock, id: j.info.ID, from: j.from, note: note}
}

// blockFetched takes a whole block fetched by id, the peer that served it
// and whether its body matches its header (block nil: the fetch failed).
func (j *blockJob) blockFetched(block []byte, from PeerID, bodyOK bool) blockStep {
	if block == nil {
		return j.done(Ignored)
	}
	if !bodyOK {
		return j.reject(from, OffenseBodyMismatch, Ignored, "served block does not match its header")
	}
	j.block, j.blockFrom = block, from
	return blockStep{kind: stepAdd, block: block, from: from}
}

// added takes the chain's verdict on the block.
func (j *blockJob) added(v Verdict) blockStep {
	switch {
	case v == Orphan && !j.walked && j.lim.maxOrphanDepth > 0:
		j.walked = true
		j.cur = j.info.Parent
		return blockStep{kind: stepAncestor, id: j.cur}
	case v == Invalid && j.rebuilt && !j.whole:
		// A short-id collision may have picked a wrong pool tx.
		return j.fetchWhole()
	}
	return j.done(v)
}

// ancestorLookup takes whether the wanted ancestor is stored.
func (j *blockJob) ancestorLookup(stored bool) blockStep {
	if stored {
		return j.addAncestors()
	}
	if j.depth >= j.lim.maxOrphanDepth {
		s := j.walkFailed("orphan deeper than the ancestor limit")
		s.id = j.cur
		return s
	}
	return blockStep{kind: stepFetchAncestor, id: j.cur, from: j.blockFrom}
}

// ancestorFetched takes the ancestor fetched by id (nil: the fetch failed,
// or it did not parse), what its header says, and its header's
// VerifyHeader answer.
func (j *blockJob) ancestorFetched(block []byte, info HeaderInfo, headerErr error) blockStep {
	if block == nil {
		return j.walkFailed("")
	}
	if j.size += len(block); j.size > j.lim.maxAncestorBytes {
		s := j.walkFailed("ancestors over the byte limit")
		s.id = info.ID
		return s
	}
	if headerErr != nil {
		// Fetched by id and checked against it, so the serving peer could
		// not make it up: a faulty authority signed it into the chain the
		// block's sender offered, and that sender pays. Walking further
		// would fetch more of it.
		s := j.walkFailed("ancestor header does not verify")
		s.id, s.err = info.ID, headerErr
		s.penalize, s.offense = j.blockFrom, OffenseInvalidBlock
		return s
	}
	j.stack = append(j.stack, block)
	j.infos = append(j.infos, info)
	j.cur = info.Parent
	j.depth++
	return blockStep{kind: stepAncestor, id: j.cur}
}

// addAncestors adds the walked ancestors oldest first, or, with none, adds
// the block again (its parent arrived meanwhile).
func (j *blockJob) addAncestors() blockStep {
	if len(j.stack) == 0 {
		return blockStep{kind: stepAdd, block: j.block, from: j.blockFrom}
	}
	n := len(j.stack)
	s := blockStep{kind: stepAddAncestors, blocks: make([][]byte, n), infos: make([]HeaderInfo, n)}
	for i := range n {
		s.blocks[i], s.infos[i] = j.stack[n-1-i], j.infos[n-1-i]
	}
	return s
}

// ancestorsAdded takes the verdict of the first ancestor the chain did not
// store (Accepted when all were stored or known).
func (j *blockJob) ancestorsAdded(failed Verdict) blockStep {
	if failed == Accepted || failed == Known {
		return blockStep{kind: stepAdd, block: j.block, from: j.blockFrom}
	}
	s := j.walkFailed("ancestor not stored")
	if failed == Invalid && !j.lim.authenticates {
		// With authenticated headers the proposer signed it.
		s.penalize, s.offense = j.blockFrom, OffenseInvalidBlock
	}
	return s
}

// walkFailed ends the job as an Orphan: sync may still find the ancestors.
func (j *blockJob) walkFailed(note string) blockStep {
	s := j.done(Orphan)
	s.note = note
	return s
}

// reject ends the job with v, penalizing p.
func (j *blockJob) reject(p PeerID, o Offense, v Verdict, note string) blockStep {
	s := j.done(v)
	s.penalize, s.offense, s.note = p, o, note
	return s
}

// done ends the job with v. An invalid block is its proposer's doing when
// the chain authenticates headers, and the peer that passed it on may have
// forwarded it before checking; without authenticated headers, a peer that
// did not forward early vouched for the block.
func (j *blockJob) done(v Verdict) blockStep {
	s := blockStep{kind: stepDone, verdict: v}
	if v == Invalid && !j.early && !j.lim.authenticates {
		s.penalize, s.offense = j.from, OffenseInvalidBlock
	}
	return s
}
