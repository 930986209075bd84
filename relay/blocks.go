package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/relay/wire"
)

// blockFlight lets one validation per block id do the work; concurrent
// validations of the same block wait for it, and so do requests for a
// block this node forwarded before storing it (cut-through). A tightly
// scoped mutex guards the map; its size is bounded by
// BlockValidateConcurrency, MaxBlockImports and the ancestor walks those
// run.
type blockFlight struct {
	mu sync.Mutex
	m  map[ID]*flightEntry
	// recentFailures are blocks forwarded early whose import failed, with
	// when: a peer behind that asks for one hears busy, not "not found"
	// (at most MaxBlockImports*4).
	recentFailures idRing[time.Time]
}

// failed records that the early import of id failed at now.
func (f *blockFlight) failed(id ID, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recentFailures.cap = MaxBlockImports * 4
	f.recentFailures.put(id, now)
}

// failedSince reports whether the early import of id failed after t.
func (f *blockFlight) failedSince(id ID, t time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.recentFailures.get(id)
	return ok && at.After(t)
}

// flightEntry is one block being brought in.
type flightEntry struct {
	done      chan struct{} // closed when the work ends
	ready     chan struct{} // closed when body is set, or when the work ends
	readyShut bool          // ready is closed
	body      []byte        // the assembled block once known; written before ready closes
}

// begin returns (nil, true) when the caller leads the work for id, or a
// channel closed when the leader ends.
func (f *blockFlight) begin(id ID) (wait <-chan struct{}, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.m[id]; ok {
		return e.done, false
	}
	if f.m == nil {
		f.m = make(map[ID]*flightEntry)
	}
	f.m[id] = &flightEntry{done: make(chan struct{}), ready: make(chan struct{})}
	return nil, true
}

// running returns a channel closed when the current work on id ends, or
// nil when nobody works on it.
func (f *blockFlight) running(id ID) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.m[id]; ok {
		return e.done
	}
	return nil
}

// assembled publishes the body of the block the leader of id has put
// together, so requests waiting for it are answered before it is stored.
func (f *blockFlight) assembled(id ID, block []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[id]
	if !ok {
		return
	}
	e.body = block // a whole block fetched after a bad rebuild replaces it
	if !e.readyShut {
		e.readyShut = true
		close(e.ready)
	}
}

// waitBody waits up to timeout (or ctx) for the body of a block in flight.
// tracked is false when id is not in flight at all; a tracked block whose
// work ended without a body, or that took too long, yields nil.
func (f *blockFlight) waitBody(ctx context.Context, id ID, timeout time.Duration) (body []byte, tracked bool) {
	f.mu.Lock()
	e, ok := f.m[id]
	f.mu.Unlock()
	if !ok {
		return nil, false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-e.ready:
	case <-t.C:
		return nil, true
	case <-ctx.Done():
		return nil, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return e.body, true
}

func (f *blockFlight) end(id ID) {
	f.mu.Lock()
	e := f.m[id]
	delete(f.m, id)
	if e != nil && !e.readyShut {
		e.readyShut = true
		close(e.ready)
	}
	f.mu.Unlock()
	if e != nil {
		close(e.done)
	}
}

// blockInfo parses the header of an encoded block.
func (r *Relay) blockInfo(block []byte) (HeaderInfo, error) {
	_, info, err := r.blockHeader(block)
	return info, err
}

// blockHeader returns the encoded header of an encoded block and what it
// says.
func (r *Relay) blockHeader(block []byte) ([]byte, HeaderInfo, error) {
	hdr, _, err := r.chain.SplitBlock(block)
	if err != nil {
		return nil, HeaderInfo{}, err
	}
	info, err := r.chain.ParseHeader(hdr)
	return hdr, info, err
}

// verifyHeader authenticates an encoded header when the chain can
// (HeaderVerifier); nil otherwise.
func (r *Relay) verifyHeader(hdr []byte) error {
	if v, ok := r.chain.(HeaderVerifier); ok {
		return v.VerifyHeader(hdr)
	}
	return nil
}

// handleBlockAnnounce brings the announced block into the chain and returns
// the chain's verdict (Orphan when ancestors could not be found). It parses
// the header, makes sure one job per block runs (a concurrent announcement
// of the same block waits, lending its announcer as a further source), and
// drives the block's job (blockjob.go), which makes every decision.
func (r *Relay) handleBlockAnnounce(ctx context.Context, from PeerID, ann wire.BlockAnnounce) Verdict {
	var (
		hdr     []byte
		pushTxs [][]byte // a pushed block's txs, split once
		info    HeaderInfo
		err     error
	)
	switch a := ann.(type) {
	case *wire.CompactBlock:
		hdr = a.Header
		info, err = r.chain.ParseHeader(hdr)
	case *wire.BlockPull:
		hdr = a.Header
		info, err = r.chain.ParseHeader(hdr)
	case *wire.BlockPush:
		hdr, pushTxs, err = r.chain.SplitBlock(a.Block)
		if err == nil {
			info, err = r.chain.ParseHeader(hdr)
		}
	}
	if err != nil {
		r.penalize(from, OffenseInvalidBlock)
		return Invalid
	}
	for {
		if r.chain.HasBlock(info.ID) {
			if _, push := ann.(*wire.BlockPush); push {
				r.noteBody("block", true)
			}
			return Known
		}
		wait, leader := r.flight.begin(info.ID)
		if leader {
			break
		}
		// Another announcement of the same block is being handled. If it
		// stores the block, its validation forwards it and this one is a
		// duplicate; if it fails, try this announcer in turn. Meanwhile
		// this announcer is one more source for its fetches: an announcer
		// with bad short ids or one that withholds must not hold the block
		// up for long.
		r.fetch.addSources(from, kindBlockTxn, []ID{info.ID})
		r.fetch.addSources(from, kindBlock, []ID{info.ID})
		select {
		case <-wait:
		case <-ctx.Done():
			return Ignored
		}
	}
	j := newBlockJob(from, hdr, info, ann, r.blockJobLimits())
	d := &blockDriver{r: r, j: j, pushTxs: pushTxs}
	v, forwarded := d.run(ctx, j.start())
	if !forwarded { // else the job goes on, and ends the entry
		r.flight.end(info.ID)
	}
	return v
}

// blockJobLimits are the settings a block job decides by.
func (r *Relay) blockJobLimits() blockJobLimits {
	return blockJobLimits{
		maxOrphanDepth:     r.cfg.MaxOrphanDepth,
		maxAncestorBytes:   r.cfg.MaxAncestorBytes,
		maxBlockTxs:        r.cfg.MaxBlockTxs,
		maxTxBytes:         r.cfg.MaxTxBytes,
		maxBlockBytes:      r.cfg.MaxBlockBytes,
		authenticates:      r.authenticatesHeaders(),
		storeBeforeForward: r.cfg.StoreBeforeForward,
	}
}

// authenticatesHeaders reports whether the chain checks headers alone
// (HeaderVerifier).
func (r *Relay) authenticatesHeaders() bool {
	_, ok := r.chain.(HeaderVerifier)
	return ok
}

// blockDriver carries out a block job's steps against the chain, the pool
// and the fetcher. It holds the block's flight entry (blockFlight) until
// the job ends, and, once the job went on behind a forwarded announcement,
// an import slot too.
type blockDriver struct {
	r       *Relay
	j       *blockJob
	pushTxs [][]byte // a pushed block's txs
	// arrivals is the tx arrival log's sequence number when the pool was
	// looked up: what the pool accepted since may fill the gaps.
	arrivals uint64
}

// run drives the job from s to its verdict. forwarded reports that the
// announcement was accepted early and the job goes on, on its own
// goroutine, which ends the block's flight entry.
func (d *blockDriver) run(ctx context.Context, s blockStep) (v Verdict, forwarded bool) {
	r, j := d.r, d.j
	for {
		if s.offense != 0 {
			r.penalize(s.penalize, s.offense)
		}
		if s.note != "" {
			kv := []any{"block", j.info.ID.Short(), "from", j.from}
			if s.kind != stepDone || s.id != (ID{}) {
				kv = append(kv, "at", s.id.Short())
			}
			if s.err != nil {
				kv = append(kv, "err", s.err)
			}
			r.log.Debugw(s.note, kv...)
		}
		switch s.kind {
		case stepDone:
			if s.verdict == Orphan {
				r.noteOrphan(j.from, j.info)
			}
			return s.verdict, false
		case stepForward:
			if d.forward(*s.next) {
				return Accepted, true
			}
			return Ignored, false // closing
		}
		var ok bool
		if s, ok = d.step(ctx, s); !ok {
			return Ignored, false
		}
	}
}

// forward brings the block in behind its accepted (so forwarded)
// announcement on a goroutine of its own, within the block validation
// timeout, and then releases the import slot the job was granted and the
// block's flight entry. It reports false, having released both, when the
// relay is closing.
func (d *blockDriver) forward(next blockStep) bool {
	r, j := d.r, d.j
	started := r.spawn(func() {
		defer r.imports.release()
		defer r.flight.end(j.info.ID)
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.blockValidateTimeout())
		defer cancel()
		v, _ := d.run(ctx, next) // a job forwards once
		if v != Accepted && v != Known {
			r.flight.failed(j.info.ID, r.now())
		}
		switch v {
		case Invalid:
			// The header was authentic: the proposer signed a block that
			// fails, and the peer that passed it on could not know.
			r.stats.lateInvalid.Add(1)
			r.log.Warnw("block forwarded before import failed validation", "block", j.info.ID.Short(), "height", j.info.Height, "from", j.from)
		case Ignored:
			r.log.Debugw("block forwarded before import not brought in", "block", j.info.ID.Short(), "from", j.from)
		}
	})
	if !started {
		r.imports.release()
		return false
	}
	r.stats.earlyForward.Add(1)
	return true
}

// step carries out one step and returns the job's next; ok is false when
// ctx ended while waiting.
func (d *blockDriver) step(ctx context.Context, s blockStep) (next blockStep, ok bool) {
	r, j := d.r, d.j
	switch s.kind {
	case stepVerifyHeader:
		tip, _ := r.chain.Tip()
		return j.headerChecked(r.verifyHeader(j.hdr), tip), true
	case stepVerifyPushBody:
		return j.pushBodyChecked(r.offerBody(j.info, j.hdr, d.pushTxs, j.ann.(*wire.BlockPush).Block)), true
	case stepTryForward:
		parent := r.chain.HasBlock(j.info.Parent) || r.flight.running(j.info.Parent) != nil
		return j.forwardTried(parent && r.imports.tryAcquire()), true
	case stepLookup:
		d.arrivals = r.arrivals.mark()
		return j.looked(r.pool.LookupShortIDs(j.key.ShortID, s.short)), true
	case stepFetchTxn:
		bodies, ok := d.fetchTxn(ctx, s)
		if !ok {
			return blockStep{}, false
		}
		return j.txnFetched(bodies), true
	case stepAssemble:
		block, err := r.chain.AssembleBlock(j.hdr, s.txs)
		return j.assembled(block, err == nil && r.offerBody(j.info, j.hdr, s.txs, block)), true
	case stepFetchBlock:
		res, err := r.fetch.fetch(ctx, s.from, kindBlock, []ID{s.id}, nil)
		if err != nil || res[0].status != stOK {
			return j.blockFetched(nil, "", false), true
		}
		return j.blockFetched(res[0].block, res[0].from, d.wholeBodyOK(res[0].block)), true
	case stepAdd:
		if _, push := j.ann.(*wire.BlockPush); push && !j.walked {
			r.noteBody("block", false) // its body came with the announcement
		}
		// A parent forwarded early may still be on its way into the chain.
		if !d.await(ctx, j.info.Parent) {
			return blockStep{}, false
		}
		_, v, err := r.chain.AddBlock(s.block)
		switch v {
		case Accepted:
			r.seen.record(j.info.ID, r.now())
		case Invalid:
			r.log.Debugw("invalid block", "block", j.info.ID.Short(), "from", s.from, "err", err)
		}
		return j.added(v), true
	case stepAncestor:
		// A concurrent validation may be storing this very block.
		if !d.await(ctx, s.id) {
			return j.walkFailed(""), true
		}
		return j.ancestorLookup(r.chain.HasBlock(s.id)), true
	case stepFetchAncestor:
		res, err := r.fetch.fetch(ctx, s.from, kindBlock, []ID{s.id}, nil)
		if err != nil || res[0].status != stOK {
			return j.ancestorFetched(nil, HeaderInfo{}, nil), true
		}
		hdr, info, err := r.blockHeader(res[0].block)
		if err != nil { // checked by the fetcher already
			return j.ancestorFetched(nil, HeaderInfo{}, nil), true
		}
		return j.ancestorFetched(res[0].block, info, r.verifyHeader(hdr)), true
	case stepAddAncestors:
		for i, blk := range s.blocks {
			_, v, err := r.chain.AddBlock(blk)
			switch v {
			case Accepted:
				r.seen.record(s.infos[i].ID, r.now())
			case Known:
			default:
				r.log.Debugw("ancestor not stored", "block", s.infos[i].ID.Short(), "verdict", v, "err", err)
				return j.ancestorsAdded(v), true
			}
		}
		return j.ancestorsAdded(Accepted), true
	}
	r.log.Errorw("block job asked for an unknown step", "step", s.kind, "block", j.info.ID.Short())
	return blockStep{kind: stepDone, verdict: Ignored}, true
}

// fetchTxn brings in a compact block's missing txs: by getblocktxn, or
// from the pool when every one of them arrives there first (arrivals.go).
// bodies is nil when the fetch failed; ok is false when ctx ended.
func (d *blockDriver) fetchTxn(ctx context.Context, s blockStep) (bodies [][]byte, ok bool) {
	r := d.r
	r.stats.blockTxnNeeded.Add(1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel() // a fetch the pool beat is withdrawn
	type outcome struct {
		res []itemResult
		err error
	}
	fetched := make(chan outcome, 1)
	if !r.spawn(func() {
		res, err := r.fetch.fetch(fctx, s.from, kindBlockTxn, []ID{s.id}, s.fetch)
		fetched <- outcome{res, err}
	}) {
		return nil, false // closing
	}
	missing := make(map[uint64]struct{}, len(s.fetch.short))
	for _, sid := range s.fetch.short {
		missing[sid] = struct{}{}
	}
	seq := d.arrivals
	for {
		hit := false
		next, lost, wake := r.arrivals.since(seq, func(id ID) {
			if _, ok := missing[s.fetch.key.ShortID(id)]; ok {
				hit = true
			}
		})
		seq = next
		if hit || lost {
			if found := r.pool.LookupShortIDs(s.fetch.key.ShortID, s.fetch.short); allFound(found, len(s.fetch.short)) {
				r.stats.blockTxnFromPool.Add(1)
				return found, true
			}
		}
		select {
		case o := <-fetched:
			if o.err != nil || o.res[0].status != stOK {
				if ctx.Err() != nil {
					return nil, false
				}
				return nil, true
			}
			return o.res[0].bodies, true
		case <-wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// allFound reports whether a pool lookup found all n txs.
func allFound(found [][]byte, n int) bool {
	if len(found) != n {
		return false
	}
	for _, b := range found {
		if b == nil {
			return false
		}
	}
	return true
}

// await waits while block id is being brought in by another job; false
// when ctx ends first. A stored block is never waited for: a later
// announcement of it may be running a job that ends only when it finds
// the block known.
func (d *blockDriver) await(ctx context.Context, id ID) bool {
	if d.r.chain.HasBlock(id) {
		return true
	}
	wait := d.r.flight.running(id)
	if wait == nil {
		return true
	}
	select {
	case <-wait:
		return true
	case <-ctx.Done():
		return false
	}
}

// wholeBodyOK checks a whole block served by id against its header and
// offers it to waiting requests (true when the chain cannot check bodies).
func (d *blockDriver) wholeBodyOK(block []byte) bool {
	if _, ok := d.r.chain.(BodyVerifier); !ok {
		return true
	}
	hdr, txs, err := d.r.chain.SplitBlock(block)
	return err == nil && d.r.offerBody(d.j.info, hdr, txs, block)
}

// offerBody makes a block being brought in servable to the peers waiting
// for it, before it is stored, when the chain can check that its txs are
// the ones its header commits to (BodyVerifier): a rebuild with a wrong tx
// (a short-id collision, or a forwarder's bad short ids) is then never
// served. It reports false when the check fails. Without a BodyVerifier
// the block is served once stored.
func (r *Relay) offerBody(info HeaderInfo, hdr []byte, txs [][]byte, block []byte) bool {
	v, ok := r.chain.(BodyVerifier)
	if !ok {
		return true
	}
	if err := v.VerifyBody(hdr, txs); err != nil {
		r.log.Debugw("block body does not match its header", "block", info.ID.Short(), "err", err)
		return false
	}
	r.flight.assembled(info.ID, block)
	return true
}

// PublishBlock announces a block this node produced and already stored, at
// once, in the configured mode. Pending tx announcements go out first, and
// the txs among them travel prefilled in a compact block, since peers cannot
// have them yet, as do txs first seen here within the prefill age (see
// prefill.go). A push-mode block over the gossip size limit goes out as a
// compact block.
func (r *Relay) PublishBlock(block []byte) error {
	if r.closed.Load() || !r.started.Load() {
		return ErrClosed
	}
	hdr, txs, err := r.chain.SplitBlock(block)
	if err != nil {
		return fmt.Errorf("relay: publish block: %w", err)
	}
	info, err := r.chain.ParseHeader(hdr)
	if err != nil {
		return fmt.Errorf("relay: publish block: %w", err)
	}
	r.seen.record(info.ID, r.now())
	fresh := make(map[ID]bool)
	for _, id := range r.batch.flush(r.ctx) {
		fresh[id] = true
	}
	var ann wire.BlockAnnounce
	mode := r.cfg.BlockMode
	if mode == BlockPush && len(block)+pushOverhead > r.cfg.MaxGossipMessageSize {
		mode = BlockCompact
	}
	switch mode {
	case BlockPush:
		ann = &wire.BlockPush{Block: block}
	case BlockPull:
		ann = &wire.BlockPull{Header: hdr}
	default:
		ann, err = r.compactOf(hdr, txs, fresh)
		if err != nil {
			return fmt.Errorf("relay: publish block: %w", err)
		}
	}
	data, err := ann.Encode()
	if err != nil {
		return fmt.Errorf("relay: publish block: %w", err)
	}
	if err := r.blockTopic.Publish(r.ctx, data); err != nil {
		return fmt.Errorf("relay: publish block: %w", err)
	}
	r.stats.annPub.Add(1)
	r.metrics.announcement("published", "block")
	r.log.Debugw("published block", "block", info.ID.Short(), "height", info.Height, "mode", mode, "bytes", len(data))
	return nil
}

// pushOverhead is what GossipSub adds around a message's data (topic,
// sequence number, author key, signature, protobuf framing), kept free when
// deciding whether a block fits a push message.
const pushOverhead = 1 << 10

// compactOf builds a compact announcement with a random nonce; txs whose ids
// are in prefill, or that are younger here than the prefill age, travel
// whole.
func (r *Relay) compactOf(hdr []byte, txs [][]byte, prefill map[ID]bool) (*wire.CompactBlock, error) {
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, err
	}
	c := &wire.CompactBlock{Header: hdr, Nonce: binary.LittleEndian.Uint64(nb[:])}
	key := wire.NewShortIDKey(hdr, c.Nonce)
	age, now := r.prefillAge(), r.now()
	for i, tx := range txs {
		id, err := r.pool.TxID(tx)
		if err != nil {
			return nil, fmt.Errorf("tx %d of the block: %w", i, err)
		}
		if prefill[id] || r.youngerThan(id, age, now) {
			c.Prefilled = append(c.Prefilled, wire.PrefilledTx{Index: uint32(i), Tx: tx})
			continue
		}
		c.ShortIDs = append(c.ShortIDs, key.ShortID(id))
	}
	if c.TxCount() > wire.MaxBlockTxs {
		return nil, errors.New("block has too many txs for a compact announcement")
	}
	return c, nil
}
