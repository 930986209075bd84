package peers

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

var t0 = time.Unix(1_700_000_000, 0)

// pids memoizes pid: deriving a key costs enough under -race that the
// tests banning MaxBans peers would spend seconds on it.
var pids sync.Map // int -> peer.ID

// pid returns the i-th of a fixed sequence of valid peer ids (they must
// survive the ban list's JSON round trip).
func pid(i int) peer.ID {
	if id, ok := pids.Load(i); ok {
		return id.(peer.ID)
	}
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, fmt.Sprintf("peer-%d", i))
	pub, err := crypto.UnmarshalEd25519PublicKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		panic(err)
	}
	pids.Store(i, id)
	return id
}

func TestBookBansOnceAtThreshold(t *testing.T) {
	var bans []peer.ID
	var until time.Time
	b, err := NewBook(BookConfig{}, func(p peer.ID, u time.Time, _ Offense) { bans = append(bans, p); until = u })
	if err != nil {
		t.Fatal(err)
	}
	p := pid(1)
	// 19 invalid txs leave the peer at -190: not banned.
	for range 19 {
		b.Penalize(p, InvalidTx, t0)
	}
	if len(bans) != 0 {
		t.Fatalf("banned at score %v", b.Score(p, t0))
	}
	if got := b.Penalize(p, InvalidTx, t0); got != -200 {
		t.Fatalf("score after 20 invalid txs = %v, want -200", got)
	}
	b.Penalize(p, InvalidBlock, t0)
	if len(bans) != 1 || bans[0] != p {
		t.Fatalf("bans = %v, want exactly one of %v", bans, p)
	}
	if !until.Equal(t0.Add(DefaultBanDuration)) {
		t.Fatalf("ban until %v", until)
	}
	bd := b.Breakdown(p, t0)
	if bd.Offenses["invalid_tx"] != 20 || bd.Offenses["invalid_block"] != 1 {
		t.Fatalf("breakdown %+v", bd)
	}
}

func TestBookDecayAndRewardCap(t *testing.T) {
	b, _ := NewBook(BookConfig{HalfLife: time.Minute}, nil)
	p := pid(1)
	b.Penalize(p, InvalidBlock, t0)
	if got := b.Score(p, t0.Add(time.Minute)); math.Abs(got+50) > 1e-9 {
		t.Fatalf("score after one half-life = %v, want -50", got)
	}
	if got := b.Score(p, t0.Add(2*time.Minute)); math.Abs(got+25) > 1e-9 {
		t.Fatalf("score after two half-lives = %v, want -25", got)
	}
	q := pid(2)
	for range 100 {
		b.Reward(q, 1, t0)
	}
	if got := b.Score(q, t0); got != MaxReward {
		t.Fatalf("reward not capped: %v", got)
	}
	// Banked reward cannot absorb an attack: 20 + 2 x -100 is still banned territory.
	b.Penalize(q, InvalidBlock, t0)
	if got := b.Penalize(q, InvalidBlock, t0); got > DefaultBanThreshold+MaxReward {
		t.Fatalf("score %v", got)
	}
}

func TestBookBounded(t *testing.T) {
	b, _ := NewBook(BookConfig{}, nil)
	bad := pid(0)
	b.Penalize(bad, Oversize, t0)
	for i := 1; i <= MaxTrackedPeers+10; i++ {
		b.Reward(pid(i), 0.001*float64(i%7+1), t0)
	}
	if b.Len() != MaxTrackedPeers {
		t.Fatalf("book holds %d peers, cap %d", b.Len(), MaxTrackedPeers)
	}
	if b.Score(bad, t0) != Oversize.Weight() {
		t.Fatalf("the most informative record was evicted")
	}
}

func TestBanListPersistsAndExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.json")
	l, err := OpenBanList(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Ban(pid(1), t0.Add(time.Hour), "invalid_block")
	l.Ban(pid(2), t0.Add(time.Minute), "oversize")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	re := openBans(t, path)
	if !re.IsBanned(pid(1), t0) || !re.IsBanned(pid(2), t0) {
		t.Fatal("bans lost on reopen")
	}
	if re.IsBanned(pid(2), t0.Add(2*time.Minute)) {
		t.Fatal("ban did not expire")
	}
	if got := re.List(t0.Add(2 * time.Minute)); len(got) != 1 || got[0].Peer != pid(1) {
		t.Fatalf("list = %v", got)
	}
	re.Unban(pid(1))
	if err := re.Close(); err != nil {
		t.Fatal(err)
	}
	again := openBans(t, path)
	if again.IsBanned(pid(1), t0) {
		t.Fatal("unban not persisted")
	}
	g := &Gater{Bans: again, Now: func() time.Time { return t0 }}
	if !g.InterceptPeerDial(pid(1)) || g.InterceptPeerDial(pid(2)) {
		t.Fatal("gater disagrees with the ban list")
	}
}

func TestBanListBounded(t *testing.T) {
	l := openBans(t, "")
	for i := 0; i < MaxBans+5; i++ {
		l.Ban(pid(i), t0.Add(time.Duration(i+1)*time.Second), "x")
	}
	if n := len(l.List(t0)); n != MaxBans {
		t.Fatalf("%d bans, cap %d", n, MaxBans)
	}
	if l.IsBanned(pid(0), t0) || !l.IsBanned(pid(MaxBans+4), t0) {
		t.Fatal("trim dropped the wrong bans")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(LimiterConfig{RequestsPerSecond: 10, RequestBurst: 5, BytesPerSecond: 1000, ByteBurst: 1000})
	p := pid(1)
	for i := range 5 {
		if !l.AllowRequest(p, t0) {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	if l.AllowRequest(p, t0) {
		t.Fatal("request over burst allowed")
	}
	if !l.AllowRequest(pid(2), t0) {
		t.Fatal("one peer's flood throttled another")
	}
	if !l.AllowRequest(p, t0.Add(100*time.Millisecond)) {
		t.Fatal("bucket did not refill")
	}
	if !l.AllowBytes(p, 1000, t0) || l.AllowBytes(p, 1, t0) {
		t.Fatal("byte bucket wrong")
	}
	if l.AllowBytes(pid(3), 1001, t0) {
		t.Fatal("response larger than the burst allowed")
	}
	for i := range MaxTrackedPeers + 3 {
		l.AllowRequest(pid(100+i), t0)
	}
	if l.Len() != MaxTrackedPeers {
		t.Fatalf("limiter tracks %d peers", l.Len())
	}
}

// TestGossipScoringAccepted checks that gossipsub itself accepts the
// parameters (it validates them at construction).
func TestGossipScoringAccepted(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	book, _ := NewBook(BookConfig{}, nil)
	for _, coloc := range []int{0, 10} {
		params, thresholds := GossipScoring(book, ScoringConfig{TxTopic: "tx", BlockTopic: "block", ColocationThreshold: coloc})
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := pubsub.NewGossipSub(ctx, h, pubsub.WithPeerScore(params, thresholds)); err != nil {
			t.Fatalf("colocation %d: gossipsub rejected the parameters: %v", coloc, err)
		}
		cancel()
	}
	book.Penalize(pid(1), InvalidBlock, time.Now())
	params, _ := GossipScoring(book, ScoringConfig{TxTopic: "tx", BlockTopic: "block"})
	book.Penalize(pid(1), InvalidBlock, time.Now())
	if s := params.AppSpecificScore(pid(1)) * params.AppSpecificWeight; s > GraylistThreshold {
		t.Fatalf("a peer at the ban threshold scores %v in gossipsub, above the graylist %v", s, GraylistThreshold)
	}
}

func TestLivenessDropsSilentPeer(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	a, _ := mn.GenPeer()
	answering, _ := mn.GenPeer()
	silent, _ := mn.GenPeer()
	ping.NewPingService(a)
	ping.NewPingService(answering)
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []peer.ID{answering.ID(), silent.ID()} {
		if _, err := mn.ConnectPeers(a.ID(), p); err != nil {
			t.Fatal(err)
		}
	}
	dropped := make(chan peer.ID, 4)
	l := &Liveness{Host: a, Interval: 5 * time.Millisecond, Timeout: 200 * time.Millisecond, MaxMisses: 2,
		OnDrop: func(p peer.ID) { dropped <- p }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	select {
	case p := <-dropped:
		if p != silent.ID() {
			t.Fatalf("dropped %v, want the silent peer", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("silent peer never dropped")
	}
	if len(a.Network().ConnsToPeer(silent.ID())) != 0 {
		t.Fatal("silent peer still connected")
	}
	if len(a.Network().ConnsToPeer(answering.ID())) == 0 {
		t.Fatal("answering peer was disconnected")
	}
	if _, ok := l.RTT(answering.ID()); !ok {
		t.Fatal("no RTT recorded for the answering peer")
	}
}

func TestGossipToleranceSparesMildOffenses(t *testing.T) {
	book, _ := NewBook(BookConfig{}, nil)
	params, _ := GossipScoring(book, ScoringConfig{TxTopic: "tx", BlockTopic: "block", Now: func() time.Time { return t0 }})
	mild, bad := pid(1), pid(2)
	for range 5 {
		book.Penalize(mild, NotFound, t0)
	}
	book.Penalize(mild, WithheldBody, t0)
	if s := params.AppSpecificScore(mild); s != 0 {
		t.Fatalf("a peer with a few innocent misses scores %v in gossipsub; it would be pruned from the mesh", s)
	}
	book.Penalize(bad, MismatchedBody, t0)
	if s := params.AppSpecificScore(bad); s >= 0 {
		t.Fatalf("a provable offense does not reach gossipsub: %v", s)
	}
}

// TestBookBanSlack: offenses that add up to the threshold ban even though
// the first has decayed a little by the time the second comes, but not
// once the decay has given back more than the slack.
func TestBookBanSlack(t *testing.T) {
	var bans int
	b, _ := NewBook(BookConfig{}, func(peer.ID, time.Time, Offense) { bans++ })
	quick, slow := pid(1), pid(2)
	b.Penalize(quick, Oversize, t0)
	b.Penalize(quick, Oversize, t0.Add(time.Second))
	if bans != 1 {
		t.Fatalf("two oversize frames a second apart (score %v): %d bans, want 1", b.Score(quick, t0.Add(time.Second)), bans)
	}
	b.Penalize(slow, Oversize, t0)
	b.Penalize(slow, Oversize, t0.Add(time.Minute))
	if bans != 1 {
		t.Fatalf("two oversize frames a minute apart (score %v) banned", b.Score(slow, t0.Add(time.Minute)))
	}
}
