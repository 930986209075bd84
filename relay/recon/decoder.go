package recon

import (
	"errors"
	"fmt"
)

// Errors of the decoder and the codec. Tell them apart with errors.Is.
var (
	// ErrMalformed is wrapped by every DecodeSymbols error: the bytes break
	// the batch format or its caps. The sender should be penalized.
	ErrMalformed = errors.New("recon: malformed symbol batch")

	// ErrTooManySymbols: a symbol index at or past MaxSymbols was asked of
	// an encoder or fed to a decoder. From an honest peer it means the
	// difference is too large to reconcile within the bound: fall back to
	// a full pool-id sync, no penalty.
	ErrTooManySymbols = errors.New("recon: past the symbol bound")

	// ErrTooManyIDs: peeling would pass MaxDecodedIDs. Honest symbols cannot
	// get there (see MaxDecodedIDs); the sender should be penalized.
	ErrTooManyIDs = errors.New("recon: past the decoded-id bound")

	// ErrInconsistent: the peer's symbols are not those of any set: an id
	// decoded twice, an id decoded as ours that we do not hold, or an id
	// decoded as theirs alone that we hold. The sender should be penalized
	// (bar a 2^-64 chance per symbol that an honest symbol fooled the
	// purity test).
	ErrInconsistent = errors.New("recon: inconsistent symbols")

	// ErrOutOfOrder: a batch did not start at the next index expected
	// (Decoder.Received). Symbols must arrive in order, without gaps or
	// repeats.
	ErrOutOfOrder = errors.New("recon: symbols out of order")

	// ErrLocalChanged: the local encoder gained or lost ids after the
	// decoder was made, so the symbols subtracted so far belong to another
	// set. Our own fault: start a new session.
	ErrLocalChanged = errors.New("recon: local set changed during the session")
)

// Decoder recovers the difference between a remote peer's set and ours
// from the remote's coded symbols: it subtracts our own symbols at the same
// indices and peels pure symbols (count +1 or -1, checksum equal to the
// keyed hash of the sum, and an id whose index sequence includes the
// symbol's index).
//
// What it guarantees, for any input: it never panics; it holds at most
// MaxSymbols symbols and peels at most MaxDecodedIDs ids, each costing
// ~2 ln(m/2) symbol updates for m symbols received (never more than m);
// every id in Local is one we hold; no id
// in Remote is one we hold; no id is reported twice. What it cannot: the
// peer knows the session key, so it can build symbols that decode to any
// ids it likes. Remote may name ids the peer does not hold (the relay finds
// out when it fetches them and penalizes a peer that cannot serve what its
// symbols claimed), and Local may omit or include ids regardless of the
// peer's true set (the peer can always pretend to hold less or more; it
// only costs it offers of txs it did not need). Symbols that are corrupt
// rather than crafted cannot make up an id: a random symbol passes the
// purity test with probability 2^-64 (TestDecoderGarbage,
// TestDecoderCorrupted); they leave the decoder stuck short of Decoded
// until MaxSymbols.
//
// A Decoder is not safe for concurrent use, and it reads and extends its
// local encoder: one owner for both.
type Decoder struct {
	local   *Encoder
	version uint64
	h       hasher
	cs      []cell          // the difference symbols received so far, peeled
	nonZero int             // cells in cs that are not empty
	t       table           // peeled ids, bucketed by their next index
	seen    map[ID]struct{} // peeled ids
	queue   []int32         // indexes that may be pure, each at most once
	queued  []bool          // queued[i]: i is in queue
	walk    []uint64        // scratch: one id's indexes below len(cs)
	maxIDs  int             // MaxDecodedIDs; lowered by tests
	err     error
}

// NewDecoder returns a decoder of the difference between a remote set and
// local's. local supplies our symbols (under its key, which must be the
// key the remote encodes with) and must not gain or lose ids while the
// decoder is in use: Add fails with ErrLocalChanged if it does.
func NewDecoder(local *Encoder) *Decoder {
	return &Decoder{
		local:   local,
		version: local.version,
		h:       local.h,
		t:       newTable(),
		seen:    make(map[ID]struct{}),
		maxIDs:  MaxDecodedIDs,
	}
}

// Received returns how many symbols have been added: the index the next
// batch must start at.
func (d *Decoder) Received() int { return len(d.cs) }

// Err returns the error that stopped the decoder (ErrInconsistent,
// ErrTooManyIDs or ErrLocalChanged), or nil.
func (d *Decoder) Err() error { return d.err }

// Decoded reports whether the difference is fully decoded: at least one
// symbol was added, no error occurred, and every symbol received is empty
// once the decoded ids are taken out. With honest symbols that is the case
// exactly when the first symbol (which every id maps to) is empty.
func (d *Decoder) Decoded() bool {
	return d.err == nil && len(d.cs) > 0 && d.nonZero == 0
}

// Remote returns the ids decoded so far that the remote holds and we lack,
// in the order they were peeled.
func (d *Decoder) Remote() []ID { return d.ids(1) }

// Local returns the ids decoded so far that we hold and the remote lacks,
// in the order they were peeled.
func (d *Decoder) Local() []ID { return d.ids(-1) }

func (d *Decoder) ids(sign int8) []ID {
	var out []ID
	for i := range d.t.es {
		if d.t.es[i].sign == sign {
			out = append(out, d.t.es[i].id)
		}
	}
	return out
}

// Add feeds the remote's symbols [start, start+len(remote)), subtracts
// ours at the same indices and peels what becomes pure. start must equal
// Received.
//
// A batch refused whole (ErrOutOfOrder, ErrTooManySymbols) leaves the
// decoder as it was. Any other error sticks: the decoder refuses every
// later batch, Err returns it, Decoded is false, and Remote and Local hold
// what was decoded before it (not to be trusted after ErrInconsistent or
// ErrTooManyIDs).
func (d *Decoder) Add(start int, remote []Symbol) error {
	if d.err != nil {
		return d.err
	}
	if d.local.version != d.version {
		d.err = ErrLocalChanged
		return d.err
	}
	if start != len(d.cs) {
		return fmt.Errorf("%w: batch starts at %d, expected %d", ErrOutOfOrder, start, len(d.cs))
	}
	if len(remote) > MaxSymbols-start {
		return fmt.Errorf("%w: %d symbols from index %d, cap %d", ErrTooManySymbols, len(remote), start, MaxSymbols)
	}
	if err := d.local.extend(start, len(remote)); err != nil {
		return err // unreachable: the range was checked above
	}
	local := d.local.syms[start : start+len(remote)]
	for k := range remote {
		r, l := &remote[k], &local[k]
		c := cell{sum: r.Sum, check: r.Check ^ l.Check, count: int64(r.Count) - int64(l.Count)}
		xorID(&c.sum, &l.Sum)
		i := len(d.cs)
		d.cs = append(d.cs, c)
		d.queued = append(d.queued, false)
		cp := &d.cs[i]
		// Take out the ids already decoded: they are known, and leaving
		// them in would keep this symbol from ever becoming pure.
		d.t.due(i, func(e *entry) { cp.toggle(&e.id, e.check, -int64(e.sign)) })
		if !cp.empty() {
			d.nonZero++
			d.enqueue(i)
		}
	}
	d.err = d.peel()
	return d.err
}

// mayBePure is the cheap half of the purity test: a count of +1 or -1.
func (d *Decoder) mayBePure(c *cell) bool { return c.count == 1 || c.count == -1 }

// enqueue queues symbol i for the purity test if its count allows and it
// is not queued already, so the queue never outgrows the symbols.
func (d *Decoder) enqueue(i int) {
	if !d.queued[i] && d.mayBePure(&d.cs[i]) {
		d.queued[i] = true
		d.queue = append(d.queue, int32(i))
	}
}

// peel decodes pure symbols until none is left.
func (d *Decoder) peel() error {
	for len(d.queue) > 0 {
		j := d.queue[len(d.queue)-1]
		d.queue = d.queue[:len(d.queue)-1]
		d.queued[j] = false
		c := d.cs[j]
		if !d.mayBePure(&c) {
			continue
		}
		check, seed := d.h.hash(&c.sum)
		if check != c.check {
			continue
		}
		// Where the id maps below len(cs). A pure symbol's id maps to its
		// index; one that does not is a coincidence of checksums (or a
		// forgery) and is left alone.
		d.walk = d.walk[:0]
		m := newMapping(seed)
		hit := false
		for ; m.idx < uint64(len(d.cs)); m.next() {
			d.walk = append(d.walk, m.idx)
			hit = hit || m.idx == uint64(j)
		}
		if !hit {
			continue
		}
		id, sign := c.sum, int8(c.count)
		if _, dup := d.seen[id]; dup {
			return fmt.Errorf("%w: id %s decoded twice", ErrInconsistent, id.Short())
		}
		if d.local.Has(id) != (sign < 0) {
			if sign < 0 {
				return fmt.Errorf("%w: id %s decoded as ours but we do not hold it", ErrInconsistent, id.Short())
			}
			return fmt.Errorf("%w: id %s decoded as the peer's alone but we hold it", ErrInconsistent, id.Short())
		}
		if len(d.t.es) >= d.maxIDs {
			return fmt.Errorf("%w: more than %d ids", ErrTooManyIDs, d.maxIDs)
		}
		for _, idx := range d.walk {
			cp := &d.cs[idx]
			was := !cp.empty()
			cp.toggle(&id, check, -int64(sign))
			now := !cp.empty()
			switch {
			case was && !now:
				d.nonZero--
			case !was && now:
				d.nonZero++
			}
			if now {
				d.enqueue(int(idx))
			}
		}
		d.seen[id] = struct{}{}
		k := int32(len(d.t.es))
		d.t.es = append(d.t.es, entry{id: id, check: check, m: m, sign: sign})
		d.t.link(k)
	}
	return nil
}
