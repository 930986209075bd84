package testnet

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// Progress display timing and sampling.
const (
	// progressTick is how often the display samples the nodes.
	progressTick = time.Second
	// progressLogEvery is how often a plain (non-terminal) line is written.
	progressLogEvery = 10 * time.Second
	// coverageSample is how many recent txs the display checks at every
	// node; coverageAge is how old they must be, so the figure shows
	// propagation that should be complete, not txs still in flight.
	coverageSample = 32
	coverageAge    = time.Second
	// progressSampleTimeout bounds one sample's RPC calls; a node that
	// takes longer is reported as slow rather than holding up the display.
	progressSampleTimeout = 2 * time.Second
)

// sample is one progress reading.
type sample struct {
	elapsed             time.Duration
	submitted, accepted int64
	maxH                uint64
	atMax, answered     int
	nodes               int
	covered, checked    int
	// wall is the run's wall-clock time so far, shown in virtual time
	// (where elapsed is virtual); 0 hides it.
	wall time.Duration
}

func (s sample) line(total time.Duration) string {
	cov := "n/a"
	if s.checked > 0 {
		cov = fmt.Sprintf("%.1f%%", 100*float64(s.covered)/float64(s.checked))
	}
	tip := fmt.Sprintf("height %d (%d/%d nodes at it)", s.maxH, s.atMax, s.nodes)
	if s.answered < s.nodes {
		tip += fmt.Sprintf(" [%d nodes slow to answer]", s.nodes-s.answered)
	}
	clock := fmt.Sprintf("%5.1fs/%.0fs", s.elapsed.Seconds(), total.Seconds())
	if s.wall > 0 {
		clock = fmt.Sprintf("virtual %5.1fs/%.0fs wall %.0fs", s.elapsed.Seconds(), total.Seconds(), s.wall.Seconds())
	}
	return fmt.Sprintf("%s  txs %d sent %d accepted  %s  tx coverage %s",
		clock, s.submitted, s.accepted, tip, cov)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProgress samples the nodes every progressTick until stop is called
// and shows the readings on cfg.Progress: a redrawn bar on a terminal,
// a line every progressLogEvery otherwise. It also watches the cluster and
// cancels the run (cancel) when a node dies.
func startProgress(ctx context.Context, cfg *Config, w *workload, cl cluster, clients []*rpcclient.Client,
	start, end time.Time, cancel context.CancelCauseFunc) (stop func()) {
	total := end.Sub(start)
	wallStart := wallClock()
	read := func() sample {
		s := takeSample(ctx, w, clients, start)
		if cfg.VirtualTime {
			s.wall = wallClock() - wallStart
		}
		return s
	}
	tty := cfg.Progress != nil && isTerminal(cfg.Progress)
	if cfg.ProgressTTY != nil {
		tty = cfg.Progress != nil && *cfg.ProgressTTY
	}
	var bar *progressbar.ProgressBar
	if tty {
		bar = progressbar.NewOptions64(total.Milliseconds(),
			progressbar.OptionSetWriter(cfg.Progress),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(progressTick)
		defer tick.Stop()
		lastLog := start
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := cl.Err(); err != nil {
				cancel(err)
				return
			}
			// Sampling costs every node two RPC calls: only sample what
			// is shown.
			switch {
			case bar != nil:
				s := read()
				_ = bar.Set64(min(s.elapsed.Milliseconds(), total.Milliseconds()))
				bar.Describe(s.line(total))
			case cfg.Progress != nil && time.Since(lastLog) >= progressLogEvery:
				lastLog = time.Now()
				s := read()
				fmt.Fprintf(cfg.Progress, "%s testnet: %s\n", time.Now().Format("15:04:05"), s.line(total))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if bar != nil {
			_ = bar.Finish()
		}
	}
}

// takeSample reads every node's tip and checks a sample of recent txs.
func takeSample(ctx context.Context, w *workload, clients []*rpcclient.Client, start time.Time) sample {
	s := sample{elapsed: time.Since(start), submitted: w.submitted.Load(), accepted: w.accepted.Load(), nodes: len(clients)}
	ctx, cancel := context.WithTimeout(ctx, progressSampleTimeout)
	defer cancel()
	heights := make([]uint64, len(clients))
	ok := make([]bool, len(clients))
	recent := w.recentTxs(time.Now().Add(-coverageAge), coverageSample)
	ids := make([]chain.Hash, len(recent))
	for i, tx := range recent {
		ids[i] = tx.ID
	}
	covered := make([]int, len(clients))
	_ = forEachNode(len(clients), func(i int) error {
		if h, err := clients[i].ChainHead(ctx); err == nil {
			heights[i], ok[i] = h.Height, true
		}
		if len(ids) > 0 {
			if fs, err := clients[i].FirstSeenTimes(ctx, ids, nil); err == nil {
				covered[i] = len(fs.Txs)
			}
		}
		return nil
	})
	for i, h := range heights {
		if ok[i] {
			s.answered++
			s.maxH = max(s.maxH, h)
		}
		s.covered += covered[i]
	}
	for i, h := range heights {
		if ok[i] && h == s.maxH {
			s.atMax++
		}
	}
	s.checked = len(ids) * len(clients)
	return s
}
