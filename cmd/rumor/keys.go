package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rumor-relay/rumor/testnet/keyfile"
)

func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:     "keys",
		Short:   "Create and inspect ed25519 key files",
		Example: "  rumor keys new --out alice.json",
		Args:    cobra.NoArgs,
	}
	var out string
	var force bool
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "Generate a random key and write it to a key file (mode 0600)",
		Long: `Generate a random ed25519 key and write it as a key file:
{"type":"ed25519","address":"<hex>","private_key":"<hex seed>"}, mode 0600.
The address (the public key) is printed. Use the file with
'rumor tx send --key' or as a block producer key with 'rumor node --producer-key'
(a producer's address must be listed in the genesis authorities).`,
		Example: "  rumor keys new --out alice.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := keyfile.Generate()
			if err != nil {
				return err
			}
			if err := keyfile.Save(out, k, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "address: %s\nkey file: %s\n", keyfile.Address(k), out)
			return nil
		},
	}
	newCmd.Flags().StringVar(&out, "out", "key.json", "key file to write")
	newCmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	showCmd := &cobra.Command{
		Use:     "show FILE",
		Short:   "Print the address of a key file",
		Example: "  rumor keys show alice.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keyfile.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), keyfile.Address(k))
			return nil
		},
	}
	keys.AddCommand(newCmd, showCmd)
	return keys
}
