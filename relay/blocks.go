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
// the chain's verdict (Orphan when ancestors could not be found).
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
	leading := true
	defer func() {
		if leading {
			r.flight.end(info.ID)
		}
	}()
	// Authenticate before anything is fetched or handed to sync on the
	// block's behalf: a made-up block costs its announcer, not our uplink.
	if err := r.verifyHeader(hdr); err != nil {
		r.log.Debugw("announced header does not verify", "block", info.ID.Short(), "from", from, "err", err)
		r.penalize(from, OffenseInvalidBlock)
		return Invalid
	}
	if tip, _ := r.chain.Tip(); info.Height > tip+uint64(r.cfg.MaxOrphanDepth)+1 {
		// Too far ahead for an ancestor walk: a job for sync.
		r.noteOrphan(from, info)
		return Orphan
	}
	if !r.announceWithinLimits(ann) {
		r.penalize(from, OffenseInvalidBlock)
		return Invalid
	}
	if push, ok := ann.(*wire.BlockPush); ok && !r.offerBody(info, hdr, pushTxs, push.Block) {
		// Header and body came together: whoever sent them made the
		// mismatch up (the proposer signed only the header).
		r.penalize(from, OffenseBodyMismatch)
		return Invalid
	}
	if r.forwardEarly(info) {
		// Cut-through: the header is authentic and its parent is here or
		// on its way, so the announcement goes on now and the block is
		// brought in behind it; requests for it wait for its body.
		leading = false
		started := r.spawn(func() {
			defer r.imports.release()
			defer r.flight.end(info.ID)
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.blockValidateTimeout())
			defer cancel()
			v := r.bringIn(ctx, from, info, ann)
			if v != Accepted && v != Known {
				r.flight.failed(info.ID, r.now())
			}
			switch v {
			case Invalid:
				// The header was authentic: the proposer signed a block
				// that fails, and the peer that passed it on could not
				// know. Nobody here is penalized.
				r.stats.lateInvalid.Add(1)
				r.log.Warnw("block forwarded before import failed validation", "block", info.ID.Short(), "height", info.Height, "from", from)
			case Orphan:
				r.noteOrphan(from, info)
			case Ignored:
				r.log.Debugw("block forwarded before import not brought in", "block", info.ID.Short(), "from", from)
			}
		})
		if !started { // closing
			r.imports.release()
			r.flight.end(info.ID)
			return Ignored
		}
		r.stats.earlyForward.Add(1)
		return Accepted
	}
	v := r.bringIn(ctx, from, info, ann)
	switch v {
	case Invalid:
		// With an authenticated header an invalid body is its
		// proposer's doing, and the peer that passed it on may have
		// forwarded it before checking (cut-through): nobody here pays.
		// Without one, the announcer vouched for the block.
		if !r.authenticatesHeaders() {
			r.penalize(from, OffenseInvalidBlock)
		}
	case Orphan:
		r.noteOrphan(from, info)
	}
	return v
}

// authenticatesHeaders reports whether the chain checks headers alone
// (HeaderVerifier).
func (r *Relay) authenticatesHeaders() bool {
	_, ok := r.chain.(HeaderVerifier)
	return ok
}

// announceWithinLimits applies the chain's size limits to what an
// announcement carries, before it is forwarded or anything is fetched for
// it (the decoder has applied the wire's).
func (r *Relay) announceWithinLimits(ann wire.BlockAnnounce) bool {
	switch a := ann.(type) {
	case *wire.CompactBlock:
		if a.TxCount() > r.cfg.MaxBlockTxs {
			return false
		}
		for _, p := range a.Prefilled {
			if len(p.Tx) > r.cfg.MaxTxBytes {
				return false
			}
		}
	case *wire.BlockPush:
		return len(a.Block) <= r.cfg.MaxBlockBytes
	}
	return true
}

// forwardEarly reports whether a block announcement whose header passed
// the cheap checks may be forwarded before the block is stored, and if so
// takes one of the MaxBlockImports slots for bringing it in. It needs a
// chain that authenticates headers alone (else the cheap checks prove
// nothing), a parent that is stored or being brought in (else the ancestor
// walk decides), and a free slot.
func (r *Relay) forwardEarly(info HeaderInfo) bool {
	if r.cfg.StoreBeforeForward || !r.authenticatesHeaders() {
		return false
	}
	if !r.chain.HasBlock(info.Parent) && r.flight.running(info.Parent) == nil {
		return false
	}
	return r.imports.tryAcquire()
}

// bringIn gets the block of an announcement whose header passed the cheap
// checks and adds it to the chain, returning the chain's verdict.
func (r *Relay) bringIn(ctx context.Context, from PeerID, info HeaderInfo, ann wire.BlockAnnounce) Verdict {
	switch a := ann.(type) {
	case *wire.CompactBlock:
		return r.handleCompact(ctx, from, info, a)
	case *wire.BlockPull:
		res, err := r.fetch.fetch(ctx, from, kindBlock, []ID{info.ID}, nil)
		if err != nil || res[0].status != stOK {
			return Ignored
		}
		return r.addWholeBlock(ctx, res[0].from, info, res[0].block)
	case *wire.BlockPush:
		// Its body was checked against its header, and offered, when
		// the announcement came in (handleBlockAnnounce).
		r.noteBody("block", false)
		return r.addBlock(ctx, from, info, a.Block)
	}
	return Invalid
}

// handleCompact rebuilds a compact block from the pool, fetches what is
// missing by index from the announcer (or another source), and adds it.
// If the rebuilt block is invalid although the announcement's own data is
// well formed, a short-id collision may have picked a wrong pool tx: the
// whole block is fetched and tried once more before blaming anyone (BIP152).
func (r *Relay) handleCompact(ctx context.Context, from PeerID, info HeaderInfo, a *wire.CompactBlock) Verdict {
	key := wire.NewShortIDKey(a.Header, a.Nonce)
	txs := make([][]byte, a.TxCount())
	for _, p := range a.Prefilled {
		txs[p.Index] = p.Tx
	}
	// Positions not prefilled take the short ids in order.
	pos := make([]uint32, 0, len(a.ShortIDs))
	for i := range txs {
		if txs[i] == nil {
			pos = append(pos, uint32(i))
		}
	}
	if len(pos) != len(a.ShortIDs) { // the decoder rules this out
		return Invalid
	}
	var found [][]byte
	if len(a.ShortIDs) > 0 {
		found = r.pool.LookupShortIDs(key.ShortID, a.ShortIDs)
	}
	arg := &txnArg{block: info.ID, key: key}
	for i, p := range pos {
		if i < len(found) && found[i] != nil {
			txs[p] = found[i]
			continue
		}
		arg.indexes = append(arg.indexes, p)
		arg.short = append(arg.short, a.ShortIDs[i])
	}
	rebuilt := len(pos) > 0
	if len(arg.indexes) > 0 {
		res, err := r.fetch.fetch(ctx, from, kindBlockTxn, []ID{info.ID}, arg)
		if err != nil || res[0].status != stOK {
			return Ignored
		}
		for i, p := range arg.indexes {
			txs[p] = res[0].bodies[i]
		}
	}
	block, err := r.chain.AssembleBlock(a.Header, txs)
	if err != nil {
		if !rebuilt {
			return Invalid
		}
		block = nil
	}
	v := Invalid
	if block != nil && r.offerBody(info, a.Header, txs, block) {
		v = r.addBlock(ctx, from, info, block)
	}
	if v != Invalid || !rebuilt {
		return v
	}
	r.log.Debugw("compact block rebuilt invalid; fetching whole block", "block", info.ID.Short())
	res, err := r.fetch.fetch(ctx, from, kindBlock, []ID{info.ID}, nil)
	if err != nil || res[0].status != stOK {
		return Ignored
	}
	return r.addWholeBlock(ctx, res[0].from, info, res[0].block)
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

// addWholeBlock offers and adds a whole block that from served by id. Honest peers serve only blocks whose body matches the header
// (offerBody, or stored), so a mismatch is from's: OffenseBodyMismatch.
func (r *Relay) addWholeBlock(ctx context.Context, from PeerID, info HeaderInfo, block []byte) Verdict {
	if _, ok := r.chain.(BodyVerifier); ok {
		hdr, txs, err := r.chain.SplitBlock(block)
		if err != nil || !r.offerBody(info, hdr, txs, block) {
			r.penalize(from, OffenseBodyMismatch)
			return Ignored
		}
	}
	return r.addBlock(ctx, from, info, block)
}

// addBlock stores a block; on Orphan it fetches the missing ancestors from
// the announcer (and other sources of the block) and tries again.
func (r *Relay) addBlock(ctx context.Context, from PeerID, info HeaderInfo, block []byte) Verdict {
	// A parent forwarded early may still be on its way into the chain.
	if wait := r.flight.running(info.Parent); wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return Ignored
		}
	}
	_, v, err := r.chain.AddBlock(block)
	if v == Orphan && r.cfg.MaxOrphanDepth > 0 {
		if r.fetchAncestors(ctx, from, info.Parent) {
			_, v, err = r.chain.AddBlock(block)
		}
	}
	switch v {
	case Accepted:
		r.seen.record(info.ID, r.now())
	case Invalid:
		r.log.Debugw("invalid block", "block", info.ID.Short(), "from", from, "err", err)
	}
	return v
}

// fetchAncestors walks back from parent, fetching blocks by id until one's
// parent is stored, within MaxOrphanDepth blocks and MaxAncestorBytes, then
// adds them oldest first. It reports whether every ancestor was stored.
func (r *Relay) fetchAncestors(ctx context.Context, from PeerID, parent ID) bool {
	var stack [][]byte
	var infos []HeaderInfo
	size := 0
	cur := parent
	for depth := 0; ; depth++ {
		if r.chain.HasBlock(cur) {
			break
		}
		// A concurrent validation may be storing this very block.
		if wait := r.flight.running(cur); wait != nil {
			select {
			case <-wait:
			case <-ctx.Done():
				return false
			}
			if r.chain.HasBlock(cur) {
				break
			}
		}
		if depth >= r.cfg.MaxOrphanDepth {
			r.log.Debugw("orphan deeper than the ancestor limit", "parent", parent.Short(), "depth", depth)
			return false
		}
		res, err := r.fetch.fetch(ctx, from, kindBlock, []ID{cur}, nil)
		if err != nil || res[0].status != stOK {
			return false
		}
		blk := res[0].block
		if size += len(blk); size > r.cfg.MaxAncestorBytes {
			return false
		}
		hdr, info, err := r.blockHeader(blk)
		if err != nil { // checked by the fetcher already
			return false
		}
		// Ancestors are fetched by id and checked against it, so the peer
		// serving one cannot make it up; one that does not verify was
		// signed into its child's chain by a faulty authority, and the
		// peer that announced that chain pays for it. Walking further
		// would fetch more of it.
		if err := r.verifyHeader(hdr); err != nil {
			r.log.Debugw("ancestor header does not verify", "block", info.ID.Short(), "from", from, "err", err)
			r.penalize(from, OffenseInvalidBlock)
			return false
		}
		stack = append(stack, blk)
		infos = append(infos, info)
		cur = info.Parent
	}
	for i := len(stack) - 1; i >= 0; i-- {
		_, v, err := r.chain.AddBlock(stack[i])
		switch v {
		case Accepted:
			r.seen.record(infos[i].ID, r.now())
		case Known:
		default:
			r.log.Debugw("ancestor not stored", "block", infos[i].ID.Short(), "verdict", v, "err", err)
			if v == Invalid && !r.authenticatesHeaders() {
				// (With authenticated headers the proposer signed it;
				// see handleBlockAnnounce.)
				r.penalize(from, OffenseInvalidBlock)
			}
			return false
		}
	}
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
