package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/keyfile"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// Process-mode timing.
const (
	// stopTimeout is how long a node gets to shut down cleanly (close its
	// store, save its mempool) after SIGTERM before it is SIGKILLed.
	stopTimeout = 10 * time.Second
	// startPoll is how often the testnet looks for a starting node's RPC
	// address file.
	startPoll = 50 * time.Millisecond
	// logTailBytes is how much of a failed node's log an error quotes.
	logTailBytes = 2048
)

// RPCAddrFile is the file, inside a node's data dir, where `rumor node
// --rpc-addr-file` writes the RPC address it bound (host:port). The
// testnet starts nodes on port 0 and reads it, so there are no port races.
const RPCAddrFile = "rpc.addr"

// child is one `rumor node` process.
type child struct {
	index   int
	dir     string
	logPath string
	args    []string // what followed the executable; a chaos restart reuses them
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
	// expectExit (under procCluster.mu) marks an exit that is no failure
	// of the run: a chaos kill, or a restart attempt that chaos watches.
	expectExit bool
}

// procCluster runs every node as a child process. Children are stopped by
// Close, by the parent-death signal if this process dies, and never
// outlive Run.
type procCluster struct {
	cfg       *Config
	dir       string
	argv      []string // the command that runs `rumor node`
	endpoints []string

	mu       sync.Mutex
	children []*child // by node index; a chaos restart replaces one
	closing  bool
	err      error // first unexpected child exit
}

func (pc *procCluster) Endpoints() []string { return pc.endpoints }

// HTTPClient is nil: the nodes listen on loopback TCP.
func (pc *procCluster) HTTPClient() *http.Client { return nil }

func (pc *procCluster) Err() error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.err
}

// nodesCPU returns the CPU time the running nodes have used so far,
// summed; an error where the platform does not say (only Linux's /proc
// does) or a node has exited.
func (pc *procCluster) nodesCPU() (time.Duration, error) {
	pc.mu.Lock()
	children := slices.Clone(pc.children)
	pc.mu.Unlock()
	var sum time.Duration
	for _, c := range children {
		d, err := processCPU(c.cmd.Process.Pid)
		if err != nil {
			return 0, fmt.Errorf("node %d: %w", c.index, err)
		}
		sum += d
	}
	return sum, nil
}

// Close stops every child: SIGTERM to its process group, SIGKILL after
// stopTimeout. Safe to call more than once.
func (pc *procCluster) Close() error {
	pc.mu.Lock()
	pc.closing = true
	children := slices.Clone(pc.children)
	pc.mu.Unlock()
	for _, c := range children {
		_ = signalChild(c.cmd, syscall.SIGTERM)
	}
	deadline := time.After(stopTimeout)
	var errs []error
	for _, c := range children {
		select {
		case <-c.done:
		case <-deadline:
		}
		select {
		case <-c.done:
		default:
			_ = signalChild(c.cmd, syscall.SIGKILL)
			<-c.done
			errs = append(errs, fmt.Errorf("node %d did not stop within %v; killed (log: %s)", c.index, stopTimeout, c.logPath))
		}
	}
	return errors.Join(errs...)
}

// nodeCommand returns the argv prefix that runs `rumor node`.
func (c *Config) nodeCommand() ([]string, error) {
	if len(c.NodeCommand) > 0 {
		return c.NodeCommand, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable to start nodes: %w", err)
	}
	return []string{exe, "node"}, nil
}

// startProcesses writes the genesis and authority keys under dir, starts
// node 0, then every other node with node 0 as its only bootstrap peer.
func startProcesses(ctx context.Context, cfg *Config, g *chain.Genesis, dir string) (*procCluster, error) {
	argv, err := cfg.nodeCommand()
	if err != nil {
		return nil, err
	}
	genesisPath := filepath.Join(dir, "genesis.json")
	if err := g.Save(genesisPath); err != nil {
		return nil, err
	}
	keyDir := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, err
	}
	pc := &procCluster{cfg: cfg, dir: dir, argv: argv, endpoints: make([]string, cfg.Nodes)}
	start := func(i int, bootstrap string) (*child, error) {
		nodeDir := filepath.Join(dir, "nodes", fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return nil, err
		}
		args := append([]string(nil), argv[1:]...)
		args = append(args,
			"--data-dir", nodeDir,
			"--genesis", genesisPath,
			// TCP only: QUIC on loopback adds per-node UDP buffers and
			// CPU for no difference in what the testnet measures.
			"--listen", "/ip4/127.0.0.1/tcp/0",
			"--rpc-addr", "127.0.0.1:0",
			"--rpc-addr-file", filepath.Join(nodeDir, RPCAddrFile),
			"--metrics-addr", "",
			// mDNS off: nodes must find each other from the one bootstrap
			// address, and must not join other testnets on this host.
			"--mdns=false",
			"--block-relay", cfg.BlockRelay,
			"--tx-relay", cfg.txRelay(),
			"--log-level", cfg.NodeLogLevel,
		)
		if i < cfg.Authorities {
			kp := filepath.Join(keyDir, fmt.Sprintf("authority-%d.json", i))
			if err := keyfile.Save(kp, chain.TestnetAuthorityKey(cfg.Seed, i), true); err != nil {
				return nil, err
			}
			args = append(args, "--producer-key", kp)
		}
		if bootstrap != "" {
			args = append(args, "--bootstrap", bootstrap)
		}
		if cfg.PrefillAge != 0 {
			args = append(args, "--prefill-age", cfg.PrefillAge.String())
		}
		if cfg.MeshDegree != 0 {
			args = append(args, "--mesh-degree", strconv.Itoa(cfg.MeshDegree))
		}
		c, err := pc.spawn(i, nodeDir, args, false)
		if err != nil {
			return nil, err
		}
		pc.mu.Lock()
		pc.children = append(pc.children, c)
		pc.mu.Unlock()
		return c, nil
	}
	fail := func(err error) (*procCluster, error) {
		_ = pc.Close()
		return nil, err
	}

	c0, err := start(0, "")
	if err != nil {
		return fail(err)
	}
	if pc.endpoints[0], err = waitRPC(ctx, cfg.StartTimeout, c0); err != nil {
		return fail(err)
	}
	boot, err := bootstrapAddr(ctx, rpcclient.New(pc.endpoints[0], nil))
	if err != nil {
		return fail(err)
	}
	for i := 1; i < cfg.Nodes; i++ {
		if _, err := start(i, boot); err != nil {
			return fail(err)
		}
	}
	for _, c := range pc.children[1:] { // no restarts yet: only this goroutine writes
		if pc.endpoints[c.index], err = waitRPC(ctx, cfg.StartTimeout, c); err != nil {
			return fail(err)
		}
	}
	return pc, nil
}

// spawn starts node i's process with args (after the executable), its
// output appended to <dir>/node.log, and watches it: an exit while the
// cluster is not closing and not expectExit is the run's error.
// expectExit starts it marked (a chaos restart, until it serves RPC).
func (pc *procCluster) spawn(i int, dir string, args []string, expectExit bool) (*child, error) {
	pc.mu.Lock()
	closing := pc.closing
	pc.mu.Unlock()
	if closing {
		return nil, fmt.Errorf("start node %d: the testnet is stopping", i)
	}
	logPath := filepath.Join(dir, "node.log")
	// Append: a restarted node keeps the log of its earlier lives.
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(pc.argv[0], args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), pc.cfg.NodeEnv...)
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start node %d: %w", i, err)
	}
	c := &child{index: i, dir: dir, logPath: logPath, args: args, cmd: cmd, done: make(chan struct{}), expectExit: expectExit}
	go func() {
		err := cmd.Wait()
		logf.Close()
		pc.mu.Lock()
		c.waitErr = err
		failed := !pc.closing && !c.expectExit && pc.err == nil
		pc.mu.Unlock()
		if failed {
			e := fmt.Errorf("node %d exited unexpectedly (%v); log %s:\n%s", i, err, logPath, logTail(logPath))
			pc.mu.Lock()
			if pc.err == nil {
				pc.err = e
			}
			pc.mu.Unlock()
		}
		close(c.done)
	}()
	return c, nil
}

// waitRPC waits for c to write its RPC address file and returns the
// endpoint URL.
func waitRPC(ctx context.Context, timeout time.Duration, c *child) (string, error) {
	path := filepath.Join(c.dir, RPCAddrFile)
	tick := time.NewTicker(startPoll)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return rpcclient.NormalizeURL(strings.TrimSpace(string(b))), nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-c.done:
			return "", fmt.Errorf("node %d exited during start-up (%v); log %s:\n%s", c.index, c.waitErr, c.logPath, logTail(c.logPath))
		case <-deadline:
			return "", fmt.Errorf("node %d did not serve RPC within %v; log %s:\n%s", c.index, timeout, c.logPath, logTail(c.logPath))
		case <-tick.C:
		}
	}
}

// bootstrapAddr asks a node for its listen addresses and picks one to give
// the others: a loopback TCP address when there is one.
func bootstrapAddr(ctx context.Context, c *rpcclient.Client) (string, error) {
	info, err := c.NodeInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("node 0 node_info: %w", err)
	}
	if len(info.ListenAddrs) == 0 {
		return "", errors.New("node 0 reports no listen addresses")
	}
	for _, a := range info.ListenAddrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			return a, nil
		}
	}
	return info.ListenAddrs[0], nil
}

// logTail returns the last logTailBytes of a log file.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}
