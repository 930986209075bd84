package peers

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// GossipSub v1.1 score thresholds, those of Lotus (Filecoin) in production.
// Gossip is suppressed below -500, our own publishes skip peers below -1000,
// and below -2500 a peer's RPCs are ignored altogether (graylisted).
const (
	GossipThreshold   = -500.0
	PublishThreshold  = -1000.0
	GraylistThreshold = -2500.0

	// AcceptPXThreshold is the score a peer needs for the peer-exchange
	// records in its PRUNEs to be dialled. At 0 any stranger's PRUNE made
	// the node dial hosts of the stranger's choosing, a step towards
	// eclipsing it. 5 is five first deliveries of valid blocks (block
	// topic: weight 1 each, capped with the tx topic at TopicScoreCap 10)
	// or about 500 of txs: minutes of service for an honest mesh peer,
	// never a newcomer's. Lotus sets it so high that only bootstrappers
	// qualify; rumor finds peers with its own pex and has GossipSub PX off
	// by default, so strictness costs discovery nothing.
	AcceptPXThreshold = 5.0

	// OpportunisticGraftThreshold: when the median mesh score falls below
	// it, gossipsub grafts better-scoring peers (Lotus uses 3.5 with larger
	// delivery rewards; our rewards are smaller).
	OpportunisticGraftThreshold = 1.0

	// AppSpecificWeight scales Book scores into gossipsub's units. At 20 a
	// peer at the ban threshold (-200, so -180 past the tolerance) sits at
	// -3600, below the graylist: a peer we ban is also ignored by gossipsub
	// until the gater cuts it off.
	AppSpecificWeight = 20.0

	// GossipTolerance is how many Book points a peer may lose before
	// gossipsub hears of it. Gossipsub prunes any peer whose score is below
	// zero from its mesh, so without a tolerance one innocent timeout or
	// "not found" would cut an honest peer off the mesh for the better part
	// of an hour (the decay half-life is 10 min). 20 points absorb a few
	// mild offenses; a provable one (an invalid block, a mismatched body, a
	// malformed message: 50 or more) still counts at once.
	GossipTolerance = 20.0
)

// appScore maps a Book score onto gossipsub's application-specific score:
// zero while the peer is within GossipTolerance, then the excess.
func appScore(bookScore float64) float64 {
	return min(0, bookScore+GossipTolerance)
}

// ScoringConfig names the topics to score and the colocation policy.
type ScoringConfig struct {
	// TxTopic and BlockTopic are the relay's topic names.
	TxTopic, BlockTopic string
	// ColocationThreshold is how many peers may share one IP before the
	// P6 penalty starts; zero disables the penalty (local testnets and
	// simulations run every node on one address).
	ColocationThreshold int
	// Now is the clock for the app score; nil means time.Now.
	Now func() time.Time
}

// GossipScoring returns gossipsub peer-score parameters and thresholds that
// use book as the application-specific score (P5).
//
// Per topic, a peer earns time in mesh (P1, at most +1 after an hour, as in
// Lotus) and first deliveries (P2, capped), and pays the square of its
// invalid messages (P4): on the block topic, 5 invalid blocks reach the
// graylist; on the tx topic, 16 invalid announcements do. Mesh delivery
// deficits (P3) are off: their tuning depends on the message rate, which a
// relay cannot predict, and mis-tuned P3 prunes honest peers (Ethereum's
// experience); the app score and P4 catch the attacks P3 would.
func GossipScoring(book *Book, cfg ScoringConfig) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	topic := func(weight, firstWeight, invalidWeight float64) *pubsub.TopicScoreParams {
		return &pubsub.TopicScoreParams{
			TopicWeight:                    weight,
			TimeInMeshWeight:               1.0 / 3600,
			TimeInMeshQuantum:              time.Second,
			TimeInMeshCap:                  3600,
			FirstMessageDeliveriesWeight:   firstWeight,
			FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
			FirstMessageDeliveriesCap:      100,
			MeshFailurePenaltyDecay:        pubsub.ScoreParameterDecay(time.Hour),
			InvalidMessageDeliveriesWeight: invalidWeight,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
			MeshMessageDeliveriesDecay:     pubsub.ScoreParameterDecay(time.Hour),
		}
	}
	params := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{
			cfg.BlockTopic: topic(1, 1, -100),
			cfg.TxTopic:    topic(0.1, 0.1, -100),
		},
		TopicScoreCap: 10,
		AppSpecificScore: func(p peer.ID) float64 {
			return appScore(book.Score(p, now()))
		},
		AppSpecificWeight:         AppSpecificWeight,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               6 * time.Hour,
	}
	if cfg.ColocationThreshold > 0 {
		params.IPColocationFactorWeight = -10
		params.IPColocationFactorThreshold = cfg.ColocationThreshold
		_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
		params.IPColocationFactorWhitelist = []*net.IPNet{loopback}
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             GossipThreshold,
		PublishThreshold:            PublishThreshold,
		GraylistThreshold:           GraylistThreshold,
		AcceptPXThreshold:           AcceptPXThreshold,
		OpportunisticGraftThreshold: OpportunisticGraftThreshold,
	}
	return params, thresholds
}
