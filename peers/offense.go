package peers

// Offense is a kind of misbehaviour that the relay reports against a peer.
type Offense int

const (
	// InvalidTx: a transaction body that fails a consensus or format rule.
	InvalidTx Offense = iota
	// InvalidBlock: a block that fails a consensus rule.
	InvalidBlock
	// WithheldBody: the peer announced an item and then did not serve it
	// (not found or timeout).
	WithheldBody
	// MismatchedBody: a served body that does not hash to the id requested.
	MismatchedBody
	// Malformed: a message that does not decode.
	Malformed
	// Oversize: a message or frame over its protocol cap.
	Oversize
	// Unrequested: data the node never asked for (a block or txs outside any
	// outstanding request).
	Unrequested
	// RequestFlood: requests beyond the peer's token bucket.
	RequestFlood
	// TooManyAnnouncements: more unknown ids in flight than the per-peer cap.
	TooManyAnnouncements
	// NotFound: the peer answered "not found" for an item it announced.
	NotFound
	// BadRequest: a request the protocol forbids (an index past a block's
	// end, an inverted range).
	BadRequest

	numOffenses
)

// offenseInfo is the name and weight of one offense.
type offenseInfo struct {
	name   string
	weight float64
}

// The weights, in score points (a fresh peer scores 0; BanThreshold is -200).
// The reasoning:
//   - Provably malicious acts that cost the victim real work (an invalid
//     block, an oversize frame) weigh 100: two and the peer is banned, as
//     Bitcoin Core disconnects at a misbehaviour score of 100.
//   - A body that does not match its id, or bytes that do not decode, cannot
//     come from an honest implementation of this protocol: 50.
//   - An invalid transaction can come from an honest peer running a
//     different policy version, or racing a block that invalidated it: 10, so
//     twenty are needed for a ban.
//   - Data nobody asked for, request floods and announcement floods waste
//     bandwidth or memory but are cheap to absorb: 20.
//   - "Not found" for an announced item is the common innocent case (pools
//     differ in policy and eviction, and a tx may be mined between the
//     announcement and the request): 1, two hundred to ban.
//   - Withholding is often innocent (the tx was mined or evicted between the
//     announcement and the request), so it weighs 5: only a peer that
//     withholds persistently reaches the ban threshold.
var offenses = [numOffenses]offenseInfo{
	InvalidTx:            {"invalid_tx", -10},
	InvalidBlock:         {"invalid_block", -100},
	WithheldBody:         {"withheld_body", -5},
	MismatchedBody:       {"mismatched_body", -50},
	Malformed:            {"malformed", -50},
	Oversize:             {"oversize", -100},
	Unrequested:          {"unrequested", -20},
	RequestFlood:         {"request_flood", -20},
	TooManyAnnouncements: {"too_many_announcements", -20},
	NotFound:             {"not_found", -1},
	BadRequest:           {"bad_request", -20},
}

// String names the offense, for logs, metrics labels and JSON-RPC.
func (o Offense) String() string {
	if o < 0 || o >= numOffenses {
		return "unknown"
	}
	return offenses[o].name
}

// Weight is the score change the offense causes (negative).
func (o Offense) Weight() float64 {
	if o < 0 || o >= numOffenses {
		return 0
	}
	return offenses[o].weight
}

// Offenses lists every offense, in order.
func Offenses() []Offense {
	out := make([]Offense, numOffenses)
	for i := range out {
		out[i] = Offense(i)
	}
	return out
}
