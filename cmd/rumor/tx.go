package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/keyfile"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// txWaitPoll is how often `tx send --wait` asks tx_get whether the tx is
// included (or delivered): a tenth of the default testnet block interval.
const txWaitPoll = 100 * time.Millisecond

// What `tx send --wait` waits for.
const (
	// waitIncluded: the tx is in a block (--wait alone).
	waitIncluded = "included"
	// waitDelivered: the node knows enough peers hold the tx (tx_get's
	// "confirmed"), or it is in a block, whichever comes first.
	waitDelivered = "delivered"
)

// txSendOpts are the flags of `rumor tx send`.
type txSendOpts struct {
	endpoint    string
	keyPath     string
	to          string
	amount, fee uint64
	nonce       int64 // -1 = ask the node (pending nonce)
	payloadHex  string
	payloadSize int
	wait        string // "" (no wait), waitIncluded or waitDelivered
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
included in a block (or --timeout passes) and print the block.

With --wait=delivered, wait instead until the node reports the tx delivered:
at least 2 distinct peers are known to hold it (they announced it to the
node or fetched it from it; tx_get's "confirmed", with "seen_by" peers), or
it is in a block, whichever comes first. Until then the node re-announces
it with backoff, also across a restart. The value needs the '=': --wait
alone means --wait=included.`,
		Example: "  rumor tx send --key alice.json --to 3b6a27bc...e1 --amount 10 --fee 1 --wait\n" +
			"  rumor tx send --key alice.json --to 3b6a27bc...e1 --amount 10 --wait=delivered",
		Args: func(cmd *cobra.Command, args []string) error {
			// pflag takes an optional value only after '=': "--wait
			// delivered" leaves "delivered" as an argument.
			if len(args) == 1 && (args[0] == waitIncluded || args[0] == waitDelivered) {
				return fmt.Errorf("unexpected argument %q: write --wait=%s", args[0], args[0])
			}
			return cobra.NoArgs(cmd, args)
		},
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
	fl.StringVar(&o.wait, "wait", "", "wait until the tx is included in a block (--wait, --wait=included), or until the node reports it delivered to peers or included (--wait=delivered)")
	fl.Lookup("wait").NoOptDefVal = waitIncluded
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
	switch o.wait {
	case "", waitIncluded, waitDelivered:
	case "true", "false": // --wait was a bool flag: keep its spellings
		o.wait = map[string]string{"true": waitIncluded, "false": ""}[o.wait]
	default:
		return fmt.Errorf("--wait=%s: want %s or %s", o.wait, waitIncluded, waitDelivered)
	}
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
	if o.wait == "" {
		return nil
	}
	return waitTx(ctx, c, id, o.wait, o.timeout, out)
}

// txWaitStatus is what `tx send --wait` reads of tx_get.
type txWaitStatus struct {
	Status  string      `json:"status"` // "pending" or "included"
	BlockID *chain.Hash `json:"block_id"`
	Height  *uint64     `json:"height"`
	Own     bool        `json:"own"`
	SeenBy  *int        `json:"seen_by"`
	// Confirmed is nil from a node that does not report delivery.
	Confirmed *bool `json:"confirmed"`
}

// String describes st for the timeout error.
func (st *txWaitStatus) String() string {
	switch {
	case st.Status == "":
		return "unknown to the node"
	case st.SeenBy != nil:
		return fmt.Sprintf("%s, held by %d peers known to the node", st.Status, *st.SeenBy)
	}
	return st.Status
}

// waitTx polls tx_get until tx id is included (mode waitIncluded) or
// delivered or included (waitDelivered), or timeout passes, and prints
// which.
func waitTx(ctx context.Context, c *rpcclient.Client, id chain.Hash, mode string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(txWaitPoll)
	defer tick.Stop()
	var (
		last    string // the last answer, for the timeout error
		lastErr error  // the last call's error, if it failed
	)
	for {
		st := &txWaitStatus{} // a null result (unknown tx) decodes to nothing
		lastErr = c.Call(ctx, "tx_get", []any{id}, st)
		if lastErr == nil {
			last = st.String()
		}
		switch {
		case lastErr != nil:
		case st.Status == "included" && st.BlockID != nil && st.Height != nil:
			fmt.Fprintf(out, "included in block %s at height %d\n", st.BlockID, *st.Height)
			return nil
		case mode != waitDelivered:
		case st.Status != "" && st.Confirmed == nil:
			return fmt.Errorf("tx %s: the node does not report delivery (tx_get has no \"confirmed\"); use --wait=included", id)
		case st.Confirmed != nil && *st.Confirmed:
			seen := 0
			if st.SeenBy != nil {
				seen = *st.SeenBy
			}
			fmt.Fprintf(out, "delivered: held by %d peers\n", seen)
			return nil
		}
		select {
		case <-ctx.Done():
			if last == "" && lastErr != nil {
				last = lastErr.Error()
			}
			return fmt.Errorf("tx %s not %s within %v (last status: %s)", id, mode, timeout, last)
		case <-tick.C:
		}
	}
}
