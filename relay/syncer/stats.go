package syncer

// Stats is a snapshot of the syncer's progress and counters.
type Stats struct {
	// Peers is the number of peers tracked.
	Peers int
	// Behind reports whether some peer is known to hold blocks we lack.
	Behind bool
	// BestPeerHeight is the highest tip a peer reported.
	BestPeerHeight uint64
	// HeadersPending is the number of headers held whose blocks are not
	// connected yet.
	HeadersPending int
	// BlocksBuffered is the number of bodies waiting for their turn to
	// connect, BufferedBytes their size.
	BlocksBuffered int
	BufferedBytes  int
	// BlocksInFlight is the number of block bodies requested and not yet
	// answered.
	BlocksInFlight int
	// TxsWanted is the number of pool tx ids queued for fetching.
	TxsWanted int

	// Counters since start.
	HeadersReceived uint64
	BlocksRequested uint64
	BlocksReceived  uint64
	BlocksConnected uint64
	InvalidBlocks   uint64
	Stalls          uint64
	PoolIDsReceived uint64
	TxsFetched      uint64
	TxsAdded        uint64
	Offenses        uint64
}

// Stats returns a snapshot of the core's state and counters.
func (c *Core) Stats() Stats {
	s := c.stats
	s.Peers = len(c.peers)
	s.Behind = c.behind()
	for _, ps := range c.peerList {
		if ps.tipKnown && ps.tip.Height > s.BestPeerHeight {
			s.BestPeerHeight = ps.tip.Height
		}
		s.BlocksInFlight += ps.blocksInFlight
	}
	s.HeadersPending = len(c.hdrs)
	s.BlocksBuffered = len(c.bodies)
	s.BufferedBytes = c.bufBytes
	s.TxsWanted = len(c.wanted)
	return s
}
