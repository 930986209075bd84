package relay

import (
	"context"
	"encoding/binary"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// TestPeerSlots: a peer holds at most its share, a full peer does not
// block another, nobody passes the total, and slots come back.
func TestPeerSlots(t *testing.T) {
	s := newPeerSlots(2, 3)
	if !s.acquire("a") || !s.acquire("a") {
		t.Fatal("a could not take its two slots")
	}
	if s.acquire("a") {
		t.Fatal("a took a third slot")
	}
	if !s.acquire("b") {
		t.Fatal("a's full share blocked b")
	}
	if s.acquire("c") {
		t.Fatal("c passed the total")
	}
	s.release("a")
	if !s.acquire("a") {
		t.Fatal("a released slot not reusable")
	}
	s.release("a")
	s.release("a")
	s.release("b")
	if len(s.per) != 0 || s.running != 0 {
		t.Fatalf("left after every release: %v, %d running", s.per, s.running)
	}
}

// TestSlotParkingAttack: a peer announces unknown ids in more messages
// than the tx topic's whole validation throttle and answers no request
// (an attacker parking every slot until the fetch timeout). An honest
// peer's tx still reaches the victim within a few link latencies: the
// attacker is held to its share of the slots. Before per-peer shares the
// throttle filled and the honest announcement was dropped.
func TestSlotParkingAttack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.FetchTimeout = 30 * time.Second // the attacker answers just before it: never, here
		net := newNet(t, 10*time.Millisecond)
		victim := newNode(t, net, "victim", cfg)
		honest := newNode(t, net, "honest", cfg)
		m := net.Add("attacker")
		hold := make(chan struct{})
		t.Cleanup(func() { close(hold) })
		m.Serve(cfg.RequestProtocol(), func(PeerID, transport.ReadRequest) ([]byte, func()) {
			<-hold
			return nil, nil
		})
		topic, err := m.Join(cfg.TxTopic(), transport.TopicConfig{})
		if err != nil {
			t.Fatal(err)
		}
		net.Connect(victim.id, honest.id)
		net.Connect(victim.id, m.Self())
		for _, n := range []*tnode{victim, honest} {
			if err := n.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ctx := waitCtx(t, 20*time.Second)
		// The honest tx's delay with nobody attacking: the baseline.
		arrival := func(tag string) time.Duration {
			t.Helper()
			start := time.Now()
			id, verdict, err := honest.r.SubmitTx(mkTx(tag, 0, 120))
			if err != nil || verdict != Accepted {
				t.Fatalf("submit: %v %v", verdict, err)
			}
			for !victim.pool.HasTx(id) {
				if time.Since(start) > 5*time.Second {
					t.Fatal("the honest tx did not reach the victim within 5 s: the attacker holds its validation slots")
				}
				time.Sleep(time.Millisecond)
			}
			return time.Since(start)
		}
		normal := arrival("before")
		for i := range TxValidateConcurrency + 100 {
			var id ID
			binary.BigEndian.PutUint64(id[:], uint64(i)+1)
			data, err := (&wire.TxAnnounce{Nonce: uint64(i), IDs: []ID{id}}).Encode()
			if err != nil {
				t.Fatal(err)
			}
			if err := topic.Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second) // every announcement has reached the victim
		synctest.Wait()

		attacked := arrival("during")
		t.Logf("honest tx arrived after %v (%v with nobody attacking)", attacked, normal)
		if attacked >= 2*normal {
			t.Fatalf("under attack the honest tx took %v, normally %v: the attack more than doubles the delay", attacked, normal)
		}
		// Each request the attacker sits on costs it a withholding offense
		// once the fetch timeout passes.
		time.Sleep(cfg.FetchTimeout + time.Second)
		synctest.Wait()
		if !victim.offs.has("attacker", OffenseTimeout) {
			t.Fatalf("the withholding attacker was not penalized: %v", victim.offs.all())
		}
	})
}
