package node_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/relay"
)

// myPool is a caller's transaction pool behind relay.TxPool: it takes any
// non-empty body, identified by its SHA-256 as the relay requires.
type myPool struct {
	mu    sync.Mutex
	txs   map[relay.ID][]byte
	added chan relay.ID
}

func newMyPool() *myPool {
	return &myPool{txs: make(map[relay.ID][]byte), added: make(chan relay.ID, 16)}
}

func (p *myPool) HasTx(id relay.ID) bool { p.mu.Lock(); defer p.mu.Unlock(); return p.txs[id] != nil }

func (p *myPool) GetTx(id relay.ID) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.txs[id]
	return b, ok
}

func (p *myPool) AddTx(body []byte) (relay.ID, relay.Verdict, error) {
	if len(body) == 0 {
		return relay.ID{}, relay.Invalid, errors.New("empty transaction")
	}
	id := relay.ID(sha256.Sum256(body))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.txs[id] != nil {
		return id, relay.Known, errors.New("already known")
	}
	p.txs[id] = append([]byte(nil), body...)
	select {
	case p.added <- id:
	default:
	}
	return id, relay.Accepted, nil
}

func (p *myPool) LookupShortIDs(key chain.ShortIDKey, short []uint64) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]byte, len(short))
	for id, body := range p.txs {
		for i, s := range short {
			if chain.ShortID(key, id) == s {
				out[i] = body
			}
		}
	}
	return out
}

// myChain is a caller's chain behind relay.Chain. This one never grows
// past its genesis: the example relays transactions only.
type myChain struct{ genesis relay.ID }

func (c *myChain) Tip() (uint64, relay.ID)          { return 0, c.genesis }
func (c *myChain) HasBlock(id relay.ID) bool        { return id == c.genesis }
func (c *myChain) GetBlock(relay.ID) ([]byte, bool) { return nil, false }
func (c *myChain) BlockIDAt(h uint64) (relay.ID, bool) {
	return c.genesis, h == 0
}
func (c *myChain) ParseHeader([]byte) (relay.HeaderInfo, error) {
	return relay.HeaderInfo{}, errors.New("no blocks in this example")
}
func (c *myChain) SplitBlock([]byte) ([]byte, [][]byte, error) {
	return nil, nil, errors.New("no blocks in this example")
}
func (c *myChain) AssembleBlock([]byte, [][]byte) ([]byte, error) {
	return nil, errors.New("no blocks in this example")
}
func (c *myChain) AddBlock([]byte) (relay.ID, relay.Verdict, error) {
	return relay.ID{}, relay.Invalid, errors.New("no blocks in this example")
}

// Two nodes on loopback run rumor's relay over a caller-supplied chain and
// pool; a transaction submitted to the first reaches the second's pool.
func ExampleWithChain() {
	start := func(pool *myPool, bootstrap []string) *node.Node {
		cfg := node.DefaultConfig()
		cfg.ChainID = "my-chain"
		cfg.DataDir, cfg.InMemory = "", true // fresh identity, nothing on disk
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.MDNS = false
		cfg.RPCAddr = "" // no JSON-RPC server in this example
		cfg.Bootstrap = bootstrap
		n, err := node.New(cfg, node.WithChain(&myChain{}, pool))
		if err != nil {
			panic(err)
		}
		if err := n.Start(context.Background()); err != nil {
			panic(err)
		}
		return n
	}
	poolA, poolB := newMyPool(), newMyPool()
	a := start(poolA, nil)
	defer a.Close()
	var seed []string
	for _, addr := range a.Addrs() {
		seed = append(seed, addr.String())
	}
	b := start(poolB, seed)
	defer b.Close()

	// Wait until A has B in its transaction-topic mesh.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if tx, _ := a.MeshPeers(); len(tx) > 0 {
			break
		}
	}

	id, verdict, err := a.Relay().SubmitTx([]byte("hello, rumor"))
	if err != nil {
		panic(err)
	}
	fmt.Println("submitted to A:", verdict)
	select {
	case got := <-poolB.added:
		fmt.Println("B's pool holds it:", got == id && poolB.HasTx(id))
	case <-time.After(20 * time.Second):
		fmt.Println("B never received it")
	}
	// Output:
	// submitted to A: accepted
	// B's pool holds it: true
}
