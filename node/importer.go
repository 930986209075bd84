package node

import (
	"errors"
	"sync"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
)

// importer is the one goroutine that imports blocks: the store's commits,
// and the pool updates and head events each causes, run on it one block at
// a time, so the pool sees blocks connect and disconnect in the store's
// order without a lock spanning the store, the pool and the feed. Callers
// check a block's signatures on their own goroutines first (addBlock), so
// the relay's validations of different blocks, sync and the producer check
// in parallel and only the commits queue.
type importer struct {
	jobs chan importJob
	quit chan struct{} // closed by stop: no new jobs
	done chan struct{} // closed when the goroutine has returned
	once sync.Once     // closes quit
}

// importQueue bounds the blocks handed to the importer and not yet taken.
// Every caller waits for its answer, so at most one job per caller is ever
// outstanding (the relay's BlockValidateConcurrency validations and
// MaxBlockImports imports, sync's one connect, the producer); the buffer
// only spares a burst of them a hand-over each.
const importQueue = 64

// importJob is one block to commit and where its answer goes.
type importJob struct {
	blk   *chain.Block
	ids   []chain.Hash      // blk's tx ids when it was checked; nil: the store checks it
	reply chan importResult // buffered: the importer never waits on it
}

// importResult is the adapter's answer for one block.
type importResult struct {
	id  relay.ID
	v   relay.Verdict
	err error
}

// errImporterClosed answers a block offered after the node closed: not
// the sender's fault, so the verdict is Ignored.
var errImporterClosed = errors.New("node: block importer closed")

// newImporter starts the goroutine; commit runs each job on it.
func newImporter(commit func(*chain.Block, []chain.Hash) (relay.ID, relay.Verdict, error)) *importer {
	im := &importer{jobs: make(chan importJob, importQueue), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(im.done)
		for {
			select {
			case <-im.quit: // first: no commit starts after stop
				return
			default:
			}
			select {
			case j := <-im.jobs:
				id, v, err := commit(j.blk, j.ids)
				j.reply <- importResult{id: id, v: v, err: err}
			case <-im.quit:
				return
			}
		}
	}()
	return im
}

// run commits blk (with its tx ids when it was checked) on the importer and
// returns its verdict; after stop it answers Ignored with errImporterClosed.
func (im *importer) run(blk *chain.Block, ids []chain.Hash) (relay.ID, relay.Verdict, error) {
	j := importJob{blk: blk, ids: ids, reply: make(chan importResult, 1)}
	select {
	case im.jobs <- j:
	case <-im.quit:
		return relay.ID(blk.ID()), relay.Ignored, errImporterClosed
	}
	select {
	case r := <-j.reply:
		return r.id, r.v, r.err
	case <-im.done:
		// Stopped with the job queued or running: a job the goroutine took
		// has its answer buffered already.
		select {
		case r := <-j.reply:
			return r.id, r.v, r.err
		default:
			return relay.ID(blk.ID()), relay.Ignored, errImporterClosed
		}
	}
}

// stop ends the goroutine after the job it is running and waits for it.
// Jobs still queued are answered Ignored. Idempotent.
func (im *importer) stop() {
	im.once.Do(func() { close(im.quit) })
	<-im.done
}
