package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/node/rpc"
	"github.com/rumor-relay/rumor/relay"
)

// journalSweepInterval is how often the node drops from the own-tx journal
// the transactions its pool no longer holds (included in a block, evicted,
// expired, replaced). Nothing is lost by sweeping late: a stale entry only
// costs its bytes in the file until then, and is dropped again on replay.
// Five seconds keeps that to a few blocks' worth at the default 1 s
// interval while a sweep (one pool lookup per tracked tx) stays negligible.
const journalSweepInterval = 5 * time.Second

// ownTxs makes the transactions this node acknowledges over JSON-RPC
// survive a crash: it stands between the RPC server and the relay
// (rpc.Relay), and answers a submission only after the transaction the
// pool took is in the own-tx journal (mempool.Journal). On start it
// replays the journal into the pool and announces what the pool took; a
// sweep loop removes what the pool no longer holds.
//
// It is the seam for tracking own transactions until delivery: what is
// tracked, and when it stops being tracked, is decided here.
type ownTxs struct {
	j     *mempool.Journal
	pool  *mempool.Pool
	relay *relay.Relay
	now   func() time.Time
}

var _ rpc.Relay = (*ownTxs)(nil)

// notJournaledError is SubmitTx's error when the pool took a transaction
// but the journal could not record it: the client is not told it was
// accepted (it may retry; a retry finds the tx known and journals it).
type notJournaledError struct{ err error }

// Error implements error.
func (e *notJournaledError) Error() string { return "transaction not journaled: " + e.err.Error() }

// Unwrap returns the journal's error.
func (e *notJournaledError) Unwrap() error { return e.err }

// RejectReason names the failure in tx_send's error data.
func (e *notJournaledError) RejectReason() string { return "not-journaled" }

// openOwnTxs opens the journal and replays it into the pool: a tx already
// in the chain, past its TTL, or not taken by the pool is removed from the
// journal; those the pool holds stay tracked, and the executable ones are
// announced. The pool file and the chain are already loaded.
func openOwnTxs(cfg mempool.JournalConfig, pool *mempool.Pool, st *store.Store, r *relay.Relay) (*ownTxs, error) {
	j, entries, err := mempool.OpenJournal(cfg)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	o := &ownTxs{j: j, pool: pool, relay: r, now: time.Now}
	// A sender's txs in nonce order, so each one's parent is back first.
	slices.SortStableFunc(entries, func(a, b mempool.JournalEntry) int {
		if c := slices.Compare(a.Tx.From[:], b.Tx.From[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Tx.Nonce, b.Tx.Nonce)
	})
	now := o.now()
	ttl := pool.Config().TTL
	var dead []chain.Hash
	var held []*chain.Tx
	inChain, expired := 0, 0
	for _, e := range entries {
		id := e.Tx.ID()
		if _, ok := st.TxLocation(id); ok {
			inChain++
			dead = append(dead, id)
			continue
		}
		added := e.Added
		if added.After(now) { // the clock went back since
			added = now
		}
		if now.Sub(added) >= ttl {
			expired++
			dead = append(dead, id)
			continue
		}
		if res := pool.Add(e.Tx, added); res.Code.Held() || pool.Has(id) {
			held = append(held, e.Tx)
			continue
		}
		dead = append(dead, id)
	}
	// Executable once the whole journal is back (a later tx may have
	// filled an earlier one's gap): below its sender's pending nonce.
	var announce []relay.ID
	for _, tx := range held {
		if tx.Nonce < pool.PendingNonce(tx.From) {
			announce = append(announce, relay.ID(tx.ID()))
		}
	}
	if err := j.Remove(context.Background(), dead...); err != nil {
		j.Close()
		return nil, fmt.Errorf("node: own-tx journal: %w", err)
	}
	k := 0
	if len(announce) > 0 {
		k = r.Announce(announce)
	}
	log.Infow("own-tx journal replayed", "path", cfg.Path, "txs", len(entries), "held", len(held),
		"announced", k, "in_chain", inChain, "expired", expired, "refused", len(dead)-inChain-expired)
	return o, nil
}

// SubmitTx implements rpc.Relay: the relay adds and announces the tx;
// if the pool holds it now (taken, queued behind a nonce gap, or already
// there), it is journaled before the answer goes back. A tx a block already
// included is answered as before, unjournaled.
func (o *ownTxs) SubmitTx(body []byte) (relay.ID, relay.Verdict, error) {
	id, v, err := o.relay.SubmitTx(body)
	switch {
	case v == relay.Accepted:
	case v == relay.Known && !errors.Is(err, mempool.ErrIncluded):
	case errors.Is(err, ErrQueued):
	default:
		return id, v, err
	}
	tx, ok := o.pool.Get(chain.Hash(id))
	if !ok {
		// Evicted or mined between the add and here: journal the body
		// the client sent (the relay decoded it once already, so it does).
		if tx, err = chain.DecodeTx(body); err != nil {
			return id, relay.Ignored, &notJournaledError{err}
		}
	}
	// Not the node's context: Close stops RPC before the journal, so an
	// Append in flight is answered, and its answer is the truth.
	ctx := context.Background()
	jerr := o.j.Append(ctx, tx, o.now())
	if errors.Is(jerr, mempool.ErrJournalFull) {
		// Entries the pool dropped since the last sweep hold the room.
		o.sweep(ctx)
		jerr = o.j.Append(ctx, tx, o.now())
	}
	if jerr != nil {
		return id, relay.Ignored, &notJournaledError{jerr}
	}
	return id, v, err
}

// FirstSeen implements rpc.Relay.
func (o *ownTxs) FirstSeen(id relay.ID) (time.Time, bool) { return o.relay.FirstSeen(id) }

// sweep stops tracking the transactions the pool no longer holds.
func (o *ownTxs) sweep(ctx context.Context) {
	n, err := o.j.Retain(ctx, o.pool.Has)
	switch {
	case err != nil:
		log.Debugw("own-tx journal sweep", "err", err)
	case n > 0:
		log.Debugw("own-tx journal sweep", "removed", n)
	}
}

// sweepLoop runs sweep every journalSweepInterval until ctx ends.
func (o *ownTxs) sweepLoop(ctx context.Context) {
	t := time.NewTicker(journalSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.sweep(ctx)
		}
	}
}

// close closes the journal; RPC must be closed first.
func (o *ownTxs) close() error { return o.j.Close() }

// journalConfig returns the own-tx journal's config, or false when the
// node keeps none: no JournalPath, no data dir, or an in-memory chain
// (whose txs would be replayed against a fresh genesis).
func (c *Config) journalConfig(pool *mempool.Pool) (mempool.JournalConfig, bool) {
	p := c.Mempool.JournalPath
	if p == "" || c.InMemory || (c.DataDir == "" && !filepath.IsAbs(p)) {
		return mempool.JournalConfig{}, false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.DataDir, p)
	}
	pc := pool.Config()
	return mempool.JournalConfig{Path: p, Sync: c.Mempool.JournalSync, MaxTxs: pc.MaxTxs, MaxBytes: pc.MaxBytes}, true
}
