package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Shape of TestChaosTestnet: 4 nodes (1 authority, 3 to kill), a kill
// every 3 s of a 12 s workload, so 2 kills even when restarts under -race
// on two busy cores push the schedule back.
const (
	chaosTestNodes    = 4
	chaosTestDuration = "12s"
	chaosTestEvery    = "3s"
	chaosTestMinKills = 2
)

// TestChaosTestnet runs `rumor testnet --chaos` in process mode: nodes
// are SIGKILLed and restarted on their data dirs during the workload, and
// the run must still end with every accepted tx and block at every node,
// one tip, and every restart back and caught up. The test binary
// re-executes itself as `rumor node` (see TestMain).
func TestChaosTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts, kills and restarts node processes; skipped with -short")
	}
	t.Setenv(execMainEnv, "1") // inherited by the node children
	out := filepath.Join(t.TempDir(), "tn")
	code := run([]string{"testnet", "--nodes", fmt.Sprint(chaosTestNodes), "--duration", chaosTestDuration,
		"--tx-rate", "50", "--block-interval", "500ms", "--accounts", "64",
		"--chaos", "--chaos-every", chaosTestEvery, "--chaos-pause", "500ms",
		"--out", out, "--node-log-level", "warn", "--log-level", "warn"})
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatalf("exit %d, no report: %v", code, err)
	}
	var r struct {
		Txs struct {
			Accepted   int `json:"accepted"`
			ReachedAll int `json:"reached_all"`
		} `json:"txs"`
		Blocks struct {
			Produced   int `json:"produced"`
			ReachedAll int `json:"reached_all"`
		} `json:"blocks"`
		Heads struct {
			SameTip bool `json:"same_tip"`
		} `json:"heads"`
		Chaos *struct {
			Kills      int   `json:"kills"`
			Restarts   int   `json:"restarts"`
			CaughtUp   int   `json:"caught_up"`
			DownAtEnd  []int `json:"down_at_end"`
			PerRestart []struct {
				Node       int      `json:"node"`
				RPCReadyMs *float64 `json:"rpc_ready_ms"`
				CatchUpMs  *float64 `json:"catch_up_ms"`
			} `json:"per_restart"`
		} `json:"chaos"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit %d; errors %q", code, r.Errors)
	}
	c := r.Chaos
	if c == nil {
		t.Fatalf("no chaos in the report: %s", b)
	}
	t.Logf("%d kills, %d txs accepted, %d blocks", c.Kills, r.Txs.Accepted, r.Blocks.Produced)
	if c.Kills < chaosTestMinKills || c.Restarts != c.Kills || c.CaughtUp != c.Kills || len(c.DownAtEnd) != 0 || len(c.PerRestart) != c.Kills {
		t.Fatalf("chaos %+v", *c)
	}
	for i, p := range c.PerRestart {
		if p.Node == 0 || p.RPCReadyMs == nil || p.CatchUpMs == nil || *p.CatchUpMs < *p.RPCReadyMs {
			t.Errorf("restart %d of node %d: node 0 is the authority; RPC and catch-up times must be set, catch-up after RPC", i, p.Node)
			continue
		}
		t.Logf("restart %d: node %d RPC back after %.0f ms, caught up after %.0f ms", i, p.Node, *p.RPCReadyMs, *p.CatchUpMs)
	}
	if r.Txs.Accepted == 0 || r.Txs.ReachedAll != r.Txs.Accepted || r.Blocks.ReachedAll != r.Blocks.Produced || !r.Heads.SameTip {
		t.Fatalf("coverage: txs %d/%d, blocks %d/%d, same tip %v; errors %q",
			r.Txs.ReachedAll, r.Txs.Accepted, r.Blocks.ReachedAll, r.Blocks.Produced, r.Heads.SameTip, r.Errors)
	}
}
