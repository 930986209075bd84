package testnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// Load generator timing.
const (
	// openLoopTick is how often the open-loop generator releases the
	// transactions that have come due. 5 ms keeps the burst at 500 tx/s to
	// 2-3 txs, far below the relay's announcement batch window (20 ms).
	openLoopTick = 5 * time.Millisecond
	// sendTimeout bounds one tx_send; a node that takes longer is stuck,
	// and its sender key is retired (the nonce's fate is unknown).
	sendTimeout = 10 * time.Second
	// refusedBackoff is how long a sender waits after a refused tx before
	// trying again, so a closed loop facing a full pool does not spin.
	refusedBackoff = 20 * time.Millisecond
	// maxErrorKinds caps the distinct tx_send error messages kept; more
	// are counted under one "other errors" line.
	maxErrorKinds = 50
)

// sender is one funded key. At most one tx_send per sender is in flight,
// and its nonces go out in order to the one node it is pinned to, so a
// node never sees a sender's nonce n+1 before n.
type sender struct {
	key   ed25519.PrivateKey
	addr  chain.Address
	to    chain.Address
	nonce uint64
	node  int
}

// workload submits signed transactions over JSON-RPC. Its counters are
// safe for concurrent reads (progress) while run executes.
type workload struct {
	cfg     *Config
	chainID string
	fee     uint64
	payload []byte
	clients []*rpcclient.Client
	free    chan *sender // idle senders, FIFO: round robin over keys

	// reroute, when set (a chaos run), names the node a sender moves to
	// after a transport error, in place of retiring the sender.
	reroute func(from int) int

	submitted atomic.Int64
	accepted  atomic.Int64
	retired   atomic.Int64
	rerouted  atomic.Int64 // transport errors answered by reroute

	mu       sync.Mutex
	txs      []TxObs
	errCount map[string]int
	otherErr int
}

// payloadLen returns the payload length that makes a tx's encoding exactly
// size bytes (or the nearest below when the varint length prefix grows).
func payloadLen(size int) int {
	n := max(size-minTxSize, 0)
	for n > 0 && (&chain.Tx{Payload: make([]byte, n)}).Size() > size {
		n--
	}
	return n
}

func newWorkload(cfg *Config, g *chain.Genesis, clients []*rpcclient.Client, rng *rand.Rand) *workload {
	w := &workload{
		cfg:      cfg,
		chainID:  g.ChainID,
		fee:      max(g.MinFee, 1),
		clients:  clients,
		errCount: make(map[string]int),
	}
	// Random, incompressible padding, the same for every tx (ids differ by
	// sender and nonce).
	w.payload = make([]byte, min(payloadLen(cfg.TxSize), g.MaxPayloadBytes))
	for i := range w.payload {
		w.payload[i] = byte(rng.Uint32())
	}
	if len(w.payload) == 0 {
		w.payload = nil
	}
	senders := make([]*sender, cfg.Accounts)
	for i := range senders {
		k := chain.TestnetAccountKey(cfg.Seed, i)
		senders[i] = &sender{
			key:  k,
			addr: chain.AddressOf(k),
			to:   chain.AddressOf(chain.TestnetAccountKey(cfg.Seed, (i+1)%cfg.Accounts)),
			node: i % len(clients), // even spread over nodes
		}
	}
	// Shuffle the sending order so consecutive txs go to random nodes.
	rng.Shuffle(len(senders), func(i, j int) { senders[i], senders[j] = senders[j], senders[i] })
	w.free = make(chan *sender, len(senders))
	for _, s := range senders {
		w.free <- s
	}
	return w
}

// run submits transactions until end (or ctx ends) and waits for the
// calls in flight. It returns the time the workload took.
func (w *workload) run(ctx context.Context, end time.Time) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	if w.cfg.TxRate > 0 {
		w.openLoop(ctx, start, end, &wg)
	} else {
		for range w.cfg.Concurrency {
			wg.Go(func() {
				for time.Now().Before(end) {
					var s *sender
					select {
					case s = <-w.free:
					case <-ctx.Done():
						return
					case <-time.After(time.Until(end)):
						return
					}
					if w.cfg.RPCBatch > 1 {
						w.sendBatch(ctx, w.gather(s))
						continue
					}
					w.send(ctx, s)
				}
			})
		}
	}
	wg.Wait()
	return time.Since(start)
}

// openLoop releases TxRate txs per second on a fixed schedule, independent
// of how fast nodes answer, with at most Concurrency calls in flight. When
// the cap or the idle senders run out the schedule slips and the report
// shows fewer submissions than offered.
func (w *workload) openLoop(ctx context.Context, start, end time.Time, wg *sync.WaitGroup) {
	sem := make(chan struct{}, w.cfg.Concurrency)
	tick := time.NewTicker(openLoopTick)
	defer tick.Stop()
	sent := 0
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		if !now.Before(end) {
			return
		}
		due := int(w.cfg.TxRate*now.Sub(start).Seconds()) - sent
	release:
		for ; due > 0; due-- {
			select {
			case sem <- struct{}{}:
			default:
				break release
			}
			var s *sender
			select {
			case s = <-w.free:
			default:
				<-sem
				break release
			}
			sent++
			wg.Go(func() {
				defer func() { <-sem }()
				w.send(ctx, s)
			})
		}
	}
}

// send signs and submits one tx from s, then returns s to the idle queue
// unless its nonce can no longer be trusted.
func (w *workload) send(ctx context.Context, s *sender) {
	tx := w.sign(s)
	cctx, cancel := context.WithTimeout(ctx, sendTimeout)
	res, err := w.clients[s.node].SendTx(cctx, tx.Encode())
	cancel()
	w.settle(ctx, s, tx, res, err)
}

// gather returns s with up to RPCBatch-1 more idle senders pinned to the
// same node, taken without waiting; the others it took go back to the
// idle queue.
func (w *workload) gather(s *sender) []*sender {
	group := []*sender{s}
	var others []*sender
	for tries := 0; len(group) < w.cfg.RPCBatch && tries < 4*w.cfg.RPCBatch; tries++ {
		select {
		case o := <-w.free:
			if o.node == s.node {
				group = append(group, o)
			} else {
				others = append(others, o)
			}
			continue
		default:
		}
		break
	}
	for _, o := range others {
		w.free <- o
	}
	return group
}

// sendBatch signs one tx per sender and submits them to their node as one
// JSON-RPC batch; each answer is settled as send settles one. A batch
// that failed as a whole fails each of its txs alike.
func (w *workload) sendBatch(ctx context.Context, group []*sender) {
	txs := make([]*chain.Tx, len(group))
	bodies := make([][]byte, len(group))
	for i, s := range group {
		txs[i] = w.sign(s)
		bodies[i] = txs[i].Encode()
	}
	cctx, cancel := context.WithTimeout(ctx, sendTimeout)
	res, errs, err := w.clients[group[0].node].SendTxs(cctx, bodies)
	cancel()
	for i, s := range group {
		switch {
		case err != nil:
			w.settle(ctx, s, txs[i], rpcclient.SendResult{}, err)
		default:
			w.settle(ctx, s, txs[i], res[i], errs[i])
		}
	}
}

// sign makes and signs s's next tx and counts it submitted.
func (w *workload) sign(s *sender) *chain.Tx {
	tx := &chain.Tx{From: s.addr, To: s.to, Amount: 1, Fee: w.fee, Nonce: s.nonce, Payload: w.payload}
	tx.Sign(w.chainID, s.key)
	w.submitted.Add(1)
	return tx
}

// settle records the answer to s's tx and returns s to the idle queue
// unless its nonce can no longer be trusted.
func (w *workload) settle(ctx context.Context, s *sender, tx *chain.Tx, res rpcclient.SendResult, err error) {
	if err == nil {
		now := time.Now()
		want := tx.ID()
		if res.ID != want {
			w.recordErr(fmt.Sprintf("tx_send: node %d returned id %s for tx %s", s.node, res.ID.Short(), want.Short()))
		}
		if res.Queued {
			w.recordErr("tx_send: tx queued behind a nonce gap (not relayed until the gap fills)")
		}
		s.nonce++
		w.accepted.Add(1)
		w.mu.Lock()
		w.txs = append(w.txs, TxObs{ID: want, Origin: s.node, SentUs: now.UnixMicro()})
		w.mu.Unlock()
		w.free <- s
		return
	}
	if ctx.Err() != nil {
		return // shutting down; the sender is no longer needed
	}
	var rerr *rpcclient.Error
	if !errors.As(err, &rerr) && w.reroute != nil {
		// Chaos killed the node before or during the call. Sending the
		// identical tx (same nonce, same id) to a node that is up is safe
		// whatever the dead node did with it: a node that already holds
		// it answers with its id.
		w.rerouted.Add(1)
		s.node = w.reroute(s.node)
		select {
		case <-time.After(refusedBackoff):
		case <-ctx.Done():
			return
		}
		w.free <- s
		return
	}
	if rerr == nil {
		// Transport failure: the node may or may not have taken the nonce.
		// Retire the key rather than guess.
		w.retired.Add(1)
		w.recordErr(fmt.Sprintf("tx_send to node %d: %v (sender retired)", s.node, err))
		return
	}
	w.recordErr("tx_send: " + rerr.Error())
	if rerr.Reason() == chain.ReasonNonceTooLow.String() {
		cctx, cancel := context.WithTimeout(ctx, sendTimeout)
		acct, aerr := w.clients[s.node].Account(cctx, s.addr)
		cancel()
		if aerr != nil {
			w.retired.Add(1)
			return
		}
		s.nonce = acct.PendingNonce
	}
	select {
	case <-time.After(refusedBackoff):
	case <-ctx.Done():
		return
	}
	w.free <- s
}

func (w *workload) recordErr(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.errCount[msg]; !ok && len(w.errCount) >= maxErrorKinds {
		w.otherErr++
		return
	}
	w.errCount[msg]++
}

// results returns the accepted txs (in acceptance order) and the grouped
// error lines, most frequent first.
func (w *workload) results() ([]TxObs, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	txs := append([]TxObs(nil), w.txs...)
	type kv struct {
		msg string
		n   int
	}
	var kvs []kv
	for m, n := range w.errCount {
		kvs = append(kvs, kv{m, n})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].n != kvs[j].n {
			return kvs[i].n > kvs[j].n
		}
		return kvs[i].msg < kvs[j].msg
	})
	var errs []string
	for _, e := range kvs {
		errs = append(errs, fmt.Sprintf("%s (x%d)", e.msg, e.n))
	}
	if w.otherErr > 0 {
		errs = append(errs, fmt.Sprintf("%d other tx_send errors", w.otherErr))
	}
	return txs, errs
}

// recentTxs returns up to n of the latest txs accepted before cutoff, for
// the progress display's coverage sample.
func (w *workload) recentTxs(cutoff time.Time, n int) []TxObs {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := cutoff.UnixMicro()
	i := sort.Search(len(w.txs), func(i int) bool { return w.txs[i].SentUs > c })
	return append([]TxObs(nil), w.txs[max(0, i-n):i]...)
}
