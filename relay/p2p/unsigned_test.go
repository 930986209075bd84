package p2p

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"

	"github.com/rumor-relay/rumor/relay/transport"
)

// TestMessageID: ids are short, follow from topic and data only, and
// differ when either differs (the length prefix keeps topic "ab" + data
// "c" apart from topic "a" + data "bc").
func TestMessageID(t *testing.T) {
	msg := func(topic, data string) *pb.Message { return &pb.Message{Topic: &topic, Data: []byte(data)} }
	a := MessageID(msg("/t", "hello"))
	if len(a) != MessageIDBytes {
		t.Fatalf("id of %d bytes, want %d", len(a), MessageIDBytes)
	}
	from := msg("/t", "hello")
	from.From, from.Seqno = []byte("someone"), []byte{1}
	if MessageID(from) != a {
		t.Error("author or sequence number changed the id")
	}
	for _, other := range []*pb.Message{msg("/u", "hello"), msg("/t", "hello!"), msg("/th", "ello")} {
		if MessageID(other) == a {
			t.Errorf("%q on %q has the id of hello on /t", other.Data, other.GetTopic())
		}
	}
}

// TestUnsignedContentAddressed: the transport publishes unsigned messages
// named by their content, so the same bytes published by two nodes reach a
// third once, and a message signed by a standard GossipSub peer (the
// pre-version-2 format) never reaches the validator.
func TestUnsignedContentAddressed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, hosts := linkedMocknet(t, 4, 10*time.Millisecond)
		// 0, 1 and 2 run the transport; 3 is a GossipSub peer that signs.
		var trs []*Transport
		for _, h := range hosts[:3] {
			tr, err := New(h, Config{})
			if err != nil {
				t.Fatal(err)
			}
			trs = append(trs, tr)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		signer, err := pubsub.NewGossipSub(ctx, hosts[3])
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts[:2] {
			if _, err := mn.ConnectPeers(h.ID(), hosts[2].ID()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := mn.ConnectPeers(hosts[3].ID(), hosts[2].ID()); err != nil {
			t.Fatal(err)
		}
		const topicName = "/unsigned-test"
		var mu sync.Mutex
		seen := map[string]int{}
		var topics []transport.Topic
		for i, tr := range trs {
			cfg := transport.TopicConfig{}
			if i == 2 {
				cfg.Validate = func(_ context.Context, _ transport.PeerID, data []byte) transport.Validation {
					mu.Lock()
					seen[string(data)]++
					mu.Unlock()
					return transport.Accept
				}
			}
			tp, err := tr.Join(topicName, cfg)
			if err != nil {
				t.Fatal(err)
			}
			topics = append(topics, tp)
		}
		st, err := signer.Join(topicName)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := st.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Cancel()
		time.Sleep(3 * time.Second) // meshes form

		if err := topics[0].Publish(ctx, []byte("same bytes")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := topics[1].Publish(ctx, []byte("same bytes")); err != nil {
			t.Fatal(err)
		}
		if err := st.Publish(ctx, []byte("signed bytes")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		mu.Lock()
		got := map[string]int{}
		for k, v := range seen {
			got[k] = v
		}
		mu.Unlock()
		if got["same bytes"] != 1 {
			t.Errorf("the same bytes from two publishers validated %d times, want once", got["same bytes"])
		}
		if got["signed bytes"] != 0 {
			t.Errorf("a signed message reached the validator")
		}

		for _, tp := range topics {
			_ = tp.Close()
		}
		for _, tr := range trs {
			_ = tr.Close()
		}
		cancel()
		for _, h := range hosts {
			_ = h.Close()
		}
	})
}
