package relay

// Offense is something a peer did that the relay reports through the
// penalty hook. The relay only observes and reports; weights, decay and bans
// belong to the peer-scoring layer that installs the hook.
type Offense int

const (
	// OffenseMalformed: a gossip message or request/response that does not
	// decode.
	OffenseMalformed Offense = iota + 1
	// OffenseOversize: a request or response frame over its cap.
	OffenseOversize
	// OffenseInvalidTx: a served or announced tx that breaks a chain rule.
	OffenseInvalidTx
	// OffenseInvalidBlock: a served or announced block that breaks a chain
	// rule.
	OffenseInvalidBlock
	// OffenseBodyMismatch: a served body that does not hash to the id (or
	// short id) it was requested by.
	OffenseBodyMismatch
	// OffenseTimeout: an announcer that did not answer a fetch in time
	// (withheld).
	OffenseTimeout
	// OffenseNotFound: an announcer that answered "not found" for an item it
	// announced. Mild: mempools differ in policy and eviction.
	OffenseNotFound
	// OffenseUnrequested: a response carrying data that was not asked for.
	OffenseUnrequested
	// OffenseRequestFlood: more concurrent requests than MaxServePerPeer.
	OffenseRequestFlood
	// OffenseAnnounceFlood: announcements past MaxTrackedPerPeer.
	OffenseAnnounceFlood
	// OffenseBadRequest: a request for something the protocol forbids (e.g.
	// an index past the block's end).
	OffenseBadRequest
)

// String names the offense for logs and metrics labels.
func (o Offense) String() string {
	switch o {
	case OffenseMalformed:
		return "malformed"
	case OffenseOversize:
		return "oversize"
	case OffenseInvalidTx:
		return "invalid_tx"
	case OffenseInvalidBlock:
		return "invalid_block"
	case OffenseBodyMismatch:
		return "body_mismatch"
	case OffenseTimeout:
		return "timeout"
	case OffenseNotFound:
		return "not_found"
	case OffenseUnrequested:
		return "unrequested"
	case OffenseRequestFlood:
		return "request_flood"
	case OffenseAnnounceFlood:
		return "announce_flood"
	case OffenseBadRequest:
		return "bad_request"
	}
	return "unknown"
}

// PenaltyHook receives every offense the relay observes. It is called from
// many goroutines (validators, stream handlers, the fetch loop) and must be
// fast and safe for concurrent use; it must not call back into the Relay.
type PenaltyHook func(p PeerID, o Offense)
