package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/keyfile"
)

// genesisOpts are the flags of `rumor genesis`.
type genesisOpts struct {
	out         string
	chainID     string
	seed        string
	accounts    int
	authorities int
	interval    time.Duration
	force       bool
}

func newGenesisCmd() *cobra.Command {
	o := &genesisOpts{}
	cmd := &cobra.Command{
		Use:   "genesis",
		Short: "Write a testnet genesis and its keys",
		Long: `Write <out>/genesis.json for a test network, <out>/keys/authority-<i>.json
(block producer keys, for 'rumor node --producer-key') and
<out>/keys/account-<i>.json (funded accounts, for 'rumor tx send --key').

The keys are derived from --seed, so anyone who knows the seed can spend
the accounts and produce blocks: for testnets only. Each account is funded
with 2^40 units; the minimum fee is 1.`,
		Example: "  rumor genesis --out ./net --authorities 1 --accounts 4 --block-interval 1s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeGenesis(cmd, o, time.Now())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.out, "out", "testnet", "output directory")
	fl.StringVar(&o.chainID, "chain-id", "rumor-testnet", "chain id ([A-Za-z0-9._-], at most 64 characters)")
	fl.StringVar(&o.seed, "seed", "rumor-testnet", "seed the keys are derived from")
	fl.IntVar(&o.accounts, "accounts", 16, "funded accounts")
	fl.IntVar(&o.authorities, "authorities", 1, "block producers (round robin by height)")
	fl.DurationVar(&o.interval, "block-interval", time.Second, "block interval")
	fl.BoolVar(&o.force, "force", false, "replace existing files")
	return cmd
}

func writeGenesis(cmd *cobra.Command, o *genesisOpts, now time.Time) error {
	if o.authorities < 1 || o.accounts < 0 || o.accounts > chain.MaxTestnetAccounts {
		return fmt.Errorf("need at least 1 authority and 0..%d accounts", chain.MaxTestnetAccounts)
	}
	g := chain.NewTestnetGenesis(o.chainID, o.seed, o.accounts, o.authorities, o.interval, now)
	if err := g.Validate(); err != nil {
		return err
	}
	keys := filepath.Join(o.out, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	path := filepath.Join(o.out, "genesis.json")
	if _, err := os.Stat(path); err == nil && !o.force {
		return fmt.Errorf("%s exists; use --force to replace it", path)
	}
	if err := g.Save(path); err != nil {
		return err
	}
	for i := range o.authorities {
		if err := keyfile.Save(filepath.Join(keys, fmt.Sprintf("authority-%d.json", i)), chain.TestnetAuthorityKey(o.seed, i), o.force); err != nil {
			return err
		}
	}
	for i := range o.accounts {
		if err := keyfile.Save(filepath.Join(keys, fmt.Sprintf("account-%d.json", i)), chain.TestnetAccountKey(o.seed, i), o.force); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s (chain id %s, genesis %s)\n", path, g.ChainID, g.ID())
	fmt.Fprintf(out, "wrote %d authority and %d account keys to %s\n", o.authorities, o.accounts, keys)
	return nil
}
