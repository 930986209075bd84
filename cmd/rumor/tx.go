package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/keyfile"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// txWaitPoll is how often `tx send --wait` asks tx_get whether the tx is
// included: a tenth of the default testnet block interval.
const txWaitPoll = 100 * time.Millisecond

// txSendOpts are the flags of `rumor tx send`.
type txSendOpts struct {
	endpoint    string
	keyPath     string
	to          string
	amount, fee uint64
	nonce       int64 // -1 = ask the node (pending nonce)
	payloadHex  string
	payloadSize int
	wait        bool
	timeout     time.Duration
}

func newTxCmd() *cobra.Command {
	tx := &cobra.Command{
		Use:     "tx",
		Short:   "Build, sign and submit transactions",
		Example: "  rumor tx send --key alice.json --to <address> --amount 10 --wait",
		Args:    cobra.NoArgs,
	}
	o := &txSendOpts{}
	send := &cobra.Command{
		Use:   "send",
		Short: "Sign a transfer locally with a key file and submit it with tx_send",
		Long: `Build a transfer, sign it locally with --key (the key never leaves this
process), submit it over JSON-RPC (tx_send) and print its id. The chain id
is read from node_info and the nonce, unless --nonce is given, from
account_get's pending_nonce. With --wait, poll tx_get until the tx is
included in a block (or --timeout passes) and print the block.`,
		Example: "  rumor tx send --key alice.json --to 3b6a27bc...e1 --amount 10 --fee 1 --wait",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runTxSend(ctx, cmd, o)
		},
	}
	fl := send.Flags()
	addRPCFlag(send, &o.endpoint)
	fl.StringVar(&o.keyPath, "key", "", "sender key file (rumor keys new, rumor genesis)")
	fl.StringVar(&o.to, "to", "", "recipient address (64 hex characters)")
	fl.Uint64Var(&o.amount, "amount", 1, "units to transfer")
	fl.Uint64Var(&o.fee, "fee", chain.TestnetMinFee, "fee paid to the block producer (at least the genesis min_fee)")
	fl.Int64Var(&o.nonce, "nonce", -1, "sender nonce (-1 = the node's pending nonce for the sender)")
	fl.StringVar(&o.payloadHex, "payload", "", "payload as hex")
	fl.IntVar(&o.payloadSize, "payload-size", 0, "random payload of this many bytes (instead of --payload)")
	fl.BoolVar(&o.wait, "wait", false, "wait until the tx is included in a block")
	fl.DurationVar(&o.timeout, "timeout", time.Minute, "with --wait: give up after this long")
	_ = send.MarkFlagRequired("key")
	_ = send.MarkFlagRequired("to")
	tx.AddCommand(send)
	return tx
}

// buildTx makes and signs the transfer described by o.
func buildTx(o *txSendOpts, k ed25519.PrivateKey, chainID string, nonce uint64) (*chain.Tx, error) {
	to, err := chain.ParseAddress(o.to)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	var payload []byte
	switch {
	case o.payloadHex != "" && o.payloadSize > 0:
		return nil, errors.New("--payload and --payload-size are exclusive")
	case o.payloadHex != "":
		if payload, err = hex.DecodeString(o.payloadHex); err != nil {
			return nil, fmt.Errorf("--payload: %w", err)
		}
	case o.payloadSize > 0:
		if o.payloadSize > chain.MaxPayloadSize {
			return nil, fmt.Errorf("--payload-size %d exceeds %d", o.payloadSize, chain.MaxPayloadSize)
		}
		payload = make([]byte, o.payloadSize)
		_, _ = rand.Read(payload)
	}
	tx := &chain.Tx{From: chain.AddressOf(k), To: to, Amount: o.amount, Fee: o.fee, Nonce: nonce, Payload: payload}
	tx.Sign(chainID, k)
	return tx, nil
}

func runTxSend(ctx context.Context, cmd *cobra.Command, o *txSendOpts) error {
	key, err := keyfile.Load(o.keyPath)
	if err != nil {
		return err
	}
	c := rpcclient.New(o.endpoint, nil)
	info, err := c.NodeInfo(ctx)
	if err != nil {
		return err
	}
	nonce := uint64(o.nonce)
	if o.nonce < 0 {
		acct, err := c.Account(ctx, keyfile.Address(key))
		if err != nil {
			return err
		}
		nonce = acct.PendingNonce
	}
	tx, err := buildTx(o, key, info.ChainID, nonce)
	if err != nil {
		return err
	}
	res, err := c.SendTx(ctx, tx.Encode())
	if err != nil {
		return err
	}
	id := res.ID
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, id)
	if res.Queued {
		fmt.Fprintf(out, "queued: nonce %d is ahead of the sender's next nonce\n", nonce)
	}
	if !o.wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tick := time.NewTicker(txWaitPoll)
	defer tick.Stop()
	for {
		st, err := c.GetTx(ctx, id)
		if err == nil && st.Status == "included" && st.BlockID != nil && st.Height != nil {
			fmt.Fprintf(out, "included in block %s at height %d\n", st.BlockID, *st.Height)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tx %s not included within %v (last status: %v)", id, o.timeout, txStatusOf(st, err))
		case <-tick.C:
		}
	}
}

func txStatusOf(st *rpcclient.TxStatus, err error) string {
	if err != nil {
		return err.Error()
	}
	return st.Status
}
