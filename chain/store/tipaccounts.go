package store

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/rumor-relay/rumor/chain"
)

// tipAccountCacheSize bounds the query side's cache of tip accounts
// (Store.Account): about 210 bytes an entry with the LRU's list and map
// (measured), so 13 MiB. Every tx that
// reaches a mempool reads its sender's account twice (before its signature
// check and again under the pool's lock), and Badger answers a point read
// in about 10 µs of CPU, as much as a tenth of what a node spends on a tx.
// A busy network's senders fit many times over.
const tipAccountCacheSize = 1 << 16

// tipAccounts is a read-through cache of the accounts at the tip, for
// queries, apart from the writer's acctCache (under Store.mu, which
// queries must not take). A commit writes the new values of the accounts
// it touched through to the cache and bumps a generation; a query fills in
// a value it read from Badger only if no commit landed since it began
// reading, so a value read before a commit cannot be stored after it.
type tipAccounts struct {
	mu  sync.Mutex
	gen uint64
	lru *simplelru.LRU[chain.Address, chain.Account]
}

func newTipAccounts(size int) *tipAccounts {
	l, err := simplelru.NewLRU[chain.Address, chain.Account](size, nil)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &tipAccounts{lru: l}
}

// get returns the cached account, or the generation a reader must pass to
// fill when it is not cached.
func (c *tipAccounts) get(a chain.Address) (acct chain.Account, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	acct, ok = c.lru.Get(a)
	return acct, ok, c.gen
}

// fill caches acct, read from the database after get returned gen, unless
// a commit has landed since.
func (c *tipAccounts) fill(a chain.Address, acct chain.Account, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.lru.Add(a, acct)
	}
}

// committed records the account writes among ops, which have landed: each
// touched account's new value (zero when deleted) replaces the cached one.
// A value that does not decode (a broken database; Store.Account reports
// the zero account for it) is dropped instead.
func (c *tipAccounts) committed(ops []keyedOp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, o := range ops {
		if len(o.key) != 1+chain.AddressSize || o.key[0] != prefixAccount {
			continue
		}
		a := chain.Address(o.key[1:])
		if o.del {
			c.lru.Add(a, chain.Account{})
			continue
		}
		acct, err := decodeAccount(o.val)
		if err != nil {
			c.lru.Remove(a)
			continue
		}
		c.lru.Add(a, acct)
	}
}

// forget empties the cache, after a commit that may have landed in part.
func (c *tipAccounts) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Purge()
}
