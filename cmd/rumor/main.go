//go:debug randseednop=0

// Command rumor runs a rumor relay node, a local testnet that measures
// propagation, and small client tools (keys, transactions, raw JSON-RPC).
//
// main only parses flags and wires packages: node logic lives in package
// node, the testnet and its report in package testnet. The go:debug line
// above lets testnet seed math/rand's global source (go-libp2p-pubsub
// draws its mesh choices from it), so a virtual-time sim follows --seed.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit status out of a command; the message,
// if any, has already been printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the CLI with args and returns the exit status: 0 success,
// 1 failure (including a testnet whose items did not reach every node),
// 2 usage error.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	return exitCode(root.Execute())
}

// exitCode prints err (unless an exitError says it was printed) and
// returns the exit status it stands for.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "rumor:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "rumor:", err)
	return 1
}

func newRootCmd() *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "rumor",
		Short: "rumor: a libp2p transaction and block relay node",
		Long: `rumor relays transactions and blocks over libp2p: hash announcements pushed
over GossipSub, bodies pulled on demand, compact blocks rebuilt from the
mempool. It ships its own propagation measurement: rumor testnet.`,
		Example:       "  rumor testnet --nodes 8 --duration 30s",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// rumor node applies the level itself, after reading its
			// config file (which may set log_level).
			if cmd.Name() == "node" && !cmd.Flags().Changed("log-level") {
				return nil
			}
			return applyLogLevel(logLevel)
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info",
		`log levels: a default and per-subsystem overrides, e.g. "info,rumor/relay=debug,pubsub=warn"`)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: 2, msg: fmt.Sprintf("%v\nrun '%s --help' for usage", err, c.CommandPath())}
	})
	root.AddCommand(newNodeCmd(), newTestnetCmd(), newKeysCmd(), newTxCmd(), newRPCCmd(), newGenesisCmd())
	return root
}
