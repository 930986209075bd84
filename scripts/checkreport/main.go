// Command checkreport exits non-zero unless a `rumor testnet` report.json
// shows full coverage: some txs accepted and some blocks produced, every
// one of them first-seen at every node, and all nodes on one tip.
// scripts/test.sh runs it after the testnet smoke run, so the check does
// not depend on jq.
//
// Usage: go run ./scripts/checkreport path/to/report.json
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/rumor-relay/rumor/testnet"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: checkreport REPORT.json")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "checkreport:", err)
		os.Exit(1)
	}
}

func check(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r testnet.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case r.Txs.Accepted == 0:
		return fmt.Errorf("no txs accepted (%d submitted)", r.Txs.Submitted)
	case r.Blocks.Produced == 0:
		return fmt.Errorf("no blocks produced")
	case !r.OK():
		return fmt.Errorf("incomplete: txs %d/%d reached all, blocks %d/%d, same tip %v; errors: %q",
			r.Txs.ReachedAll, r.Txs.Accepted, r.Blocks.ReachedAll, r.Blocks.Produced, r.Heads.SameTip, r.Errors)
	}
	fmt.Printf("checkreport: OK: %d txs and %d blocks reached all %d nodes; tx p99 to all %.1f ms, block p99 to all %.1f ms\n",
		r.Txs.Accepted, r.Blocks.Produced, r.Nodes, r.Txs.TimeToAllMs.P99, r.Blocks.TimeToAllMs.P99)
	return nil
}
