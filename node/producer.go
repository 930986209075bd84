package node

import (
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay"
)

// producerRecheck bounds how long the producer sleeps when it is not the next
// proposer: a new head wakes it at once, so this only guards against a missed
// wake-up (and notices a clock that jumped).
const producerRecheck = 5 * time.Second

// producer builds a block whenever the genesis names this node's key as the
// proposer of the height after the tip and the slot has come: now >= tip time
// + block interval. One goroutine; it sleeps on a timer until the slot or
// until a new head (wake) changes whose turn it is.
type producer struct {
	g       *chain.Genesis
	key     ed25519.PrivateKey
	addr    chain.Address
	store   *store.Store
	pool    *mempool.Pool
	adapter *chainAdapter
	now     func() time.Time

	wakeC chan struct{} // cap 1
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newProducer(g *chain.Genesis, key ed25519.PrivateKey, st *store.Store, pool *mempool.Pool, a *chainAdapter) *producer {
	return &producer{g: g, key: key, addr: chain.AddressOf(key), store: st, pool: pool, adapter: a,
		now: time.Now, wakeC: make(chan struct{}, 1), quit: make(chan struct{})}
}

// wake tells the producer the tip changed. It never blocks.
func (p *producer) wake() {
	select {
	case p.wakeC <- struct{}{}:
	default:
	}
}

func (p *producer) start(publish func([]byte) error) {
	p.wg.Add(1)
	go p.loop(publish)
}

func (p *producer) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}

// due returns when this node should produce the next block, and whether it
// is this node's turn at all.
func (p *producer) due() (time.Time, bool) {
	tip, _ := p.store.Tip()
	if p.g.ProposerAt(tip.Height+1) != p.addr {
		return time.Time{}, false
	}
	return time.UnixMilli(tip.Time).Add(p.g.BlockInterval()), true
}

func (p *producer) loop(publish func([]byte) error) {
	defer p.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-p.wakeC:
		case <-timer.C:
		}
		wait := producerRecheck
		if at, mine := p.due(); mine {
			if now := p.now(); !now.Before(at) {
				p.produce(now, publish)
				continue // the tip moved; re-evaluate at once
			} else {
				wait = min(at.Sub(now), producerRecheck)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// produce builds, stores and publishes one block on the current tip. If the
// template's block fails validation (it should not: the pool holds only
// executable transactions), it falls back to an empty block so the chain
// keeps moving.
func (p *producer) produce(now time.Time, publish func([]byte) error) {
	tip, _ := p.store.Tip()
	txs := p.pool.Template(mempool.TxBudget(p.g.MaxBlockBytes), p.g.MaxBlockTxs)
	blk := p.g.BuildBlock(tip, now, p.key, txs)
	_, v, err := p.adapter.addBlock(blk)
	if v != relay.Accepted && len(txs) > 0 {
		log.Errorw("produced block refused; producing an empty one", "height", blk.Header.Height, "txs", len(txs), "err", err)
		blk = p.g.BuildBlock(tip, now, p.key, nil)
		_, v, err = p.adapter.addBlock(blk)
	}
	if v != relay.Accepted {
		log.Errorw("produced block refused", "height", blk.Header.Height, "err", err)
		// Do not spin: wait for the next head or recheck.
		select {
		case <-p.quit:
		case <-time.After(p.g.BlockInterval()):
		case <-p.wakeC:
		}
		return
	}
	b := blk.Encode()
	if err := publish(b); err != nil {
		log.Warnw("publishing produced block", "height", blk.Header.Height, "err", err)
	}
	log.Infow("produced block", "height", blk.Header.Height, "id", blk.ID().Short(), "txs", len(blk.Txs), "bytes", len(b))
}
