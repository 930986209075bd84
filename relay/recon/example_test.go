package recon_test

import (
	"fmt"

	"github.com/rumor-relay/rumor/relay/recon"
)

// Two pools that share 1000 ids and differ in 3: the peer streams coded
// symbols of its pool, we subtract ours and peel until the difference
// decodes, then know what to pull and what to offer.
func Example() {
	key := recon.SessionKey(1, 2) // from the nonces both peers sent
	theirs, ours := recon.NewEncoder(key), recon.NewEncoder(key)
	for i := range 1000 {
		id := recon.ID{byte(i), byte(i >> 8), 1}
		theirs.Add(id)
		ours.Add(id)
	}
	theirs.Add(recon.ID{0xa1})
	theirs.Add(recon.ID{0xa2})
	ours.Add(recon.ID{0xb1})

	d := recon.NewDecoder(ours)
	for !d.Decoded() {
		// The peer's side: the next 4 symbols, on the wire.
		start := d.Received()
		syms, err := theirs.Symbols(start, 4)
		if err != nil {
			fmt.Println("difference too large, fall back to a full pool-id sync:", err)
			return
		}
		msg, _ := recon.AppendSymbols(nil, start, syms)

		// Ours.
		start, syms, err = recon.DecodeSymbols(msg)
		if err == nil {
			err = d.Add(start, syms)
		}
		if err != nil {
			fmt.Println("end the session:", err) // errors.Is tells whether to penalize
			return
		}
	}
	fmt.Println("symbols:", d.Received())
	fmt.Println("pull:", len(d.Remote()), "offer:", d.Local()[0].Short())
	// Output:
	// symbols: 4
	// pull: 2 offer: b1000000
}
