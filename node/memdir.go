package node

import (
	"errors"
	"fmt"

	"github.com/spf13/afero"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
)

// MemDataDir is a data dir held in memory, for a simulated node that
// crashes and restarts: its chain store and own-tx journal outlive each
// Node that uses them, as a data dir on disk outlives a process, while
// the pool, peer scores, first-seen times and the rest of a node die with
// it. Pass the same MemDataDir to every life of the node (WithMemDataDir)
// and Close it after the last. The mempool file is not kept: a crash never
// writes it.
type MemDataDir struct {
	store *store.Store
	fs    afero.Fs
}

// NewMemDataDir opens an empty in-memory data dir for a node of genesis g.
func NewMemDataDir(g *chain.Genesis) (*MemDataDir, error) {
	if g == nil {
		return nil, errors.New("node: memory data dir needs a genesis")
	}
	gc := *g // the node fills defaults into its copy; the store must see the same
	gc.FillDefaults()
	st, err := store.Open(&gc, store.Options{})
	if err != nil {
		return nil, fmt.Errorf("node: memory data dir: %w", err)
	}
	return &MemDataDir{store: st, fs: afero.NewMemMapFs()}, nil
}

// Store returns the data dir's chain store.
func (d *MemDataDir) Store() *store.Store { return d.store }

// Close releases the data dir; no node may be using it.
func (d *MemDataDir) Close() error { return d.store.Close() }

// WithMemDataDir runs the node on d instead of a data dir on disk:
// Config.DataDir must be empty. The node uses d's store and keeps its
// own-tx journal (Config.Mempool.JournalPath) in d, and Close leaves d
// open for the node's next life.
func WithMemDataDir(d *MemDataDir) Option { return func(o *options) { o.memDir = d } }
