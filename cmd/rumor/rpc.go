package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// parseParams turns command-line words into JSON-RPC positional params:
// a word that is valid JSON is sent as that value (numbers, true, objects,
// quoted strings); any other word is sent as a string, so hex ids need no
// quoting.
func parseParams(words []string) []any {
	params := make([]any, len(words))
	for i, w := range words {
		if json.Valid([]byte(w)) {
			params[i] = json.RawMessage(w)
		} else {
			params[i] = w
		}
	}
	return params
}

func addRPCFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVar(target, "rpc", "http://"+node.DefaultRPCAddr+"/", "node JSON-RPC endpoint (URL or host:port)")
}

func newRPCCmd() *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "rpc METHOD [PARAMS...]",
		Short: "Call a JSON-RPC method and print the result",
		Long: `Call a JSON-RPC method of a node and print the result as indented JSON.
Each PARAM is one positional parameter: valid JSON is sent as is (numbers,
true/false, objects, "quoted strings"); anything else is sent as a string.
Methods: tx_send, tx_get, chain_head, chain_blockByID, chain_blockByHeight,
account_get, mempool_summary, net_peers, net_mesh, net_bans, node_info,
measure_firstSeen, measure_stats.`,
		Example: `  rumor rpc chain_blockByHeight 1 true --rpc 127.0.0.1:8545`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return callAndPrint(ctx, cmd, rpcclient.New(endpoint, nil), args[0], parseParams(args[1:]))
		},
	}
	addRPCFlag(cmd, &endpoint)
	return cmd
}

func callAndPrint(ctx context.Context, cmd *cobra.Command, c *rpcclient.Client, method string, params []any) error {
	var res json.RawMessage
	if err := c.Call(ctx, method, params, &res); err != nil {
		return err
	}
	// Indent the raw bytes rather than re-encoding a decoded value, which
	// would round large integers through float64.
	var buf bytes.Buffer
	if err := json.Indent(&buf, res, "", "  "); err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), buf.String())
	return nil
}
