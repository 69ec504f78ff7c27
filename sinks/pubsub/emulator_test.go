package pubsub

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/pubsub/pubsubemu"
)

// emulatorTopic creates a topic with a pull subscription, named uniquely so that a shared
// emulator can serve several runs.
func emulatorTopic(tb testing.TB, addr string) (client *pubsub.Client, topic, sub string) {
	return emulatorTopicOrdered(tb, addr, false)
}

// emulatorTopicOrdered is emulatorTopic with message ordering on the subscription or not.
func emulatorTopicOrdered(tb testing.TB, addr string, ordered bool) (client *pubsub.Client, topic, sub string) {
	tb.Helper()
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, testProject, option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	id := fmt.Sprintf("tailgate-%d", time.Now().UnixNano())
	topic = "projects/" + testProject + "/topics/" + id
	sub = "projects/" + testProject + "/subscriptions/" + id
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
		tb.Fatalf("create topic: %v", err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx,
		&pb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 60, EnableMessageOrdering: ordered}); err != nil {
		tb.Fatalf("create subscription: %v", err)
	}
	return client, topic, sub
}

func TestEmulatorEndToEnd(t *testing.T) {
	addr := pubsubemu.Addr(t)
	client, topic, sub := emulatorTopic(t, addr)
	s := newTestSink(t, addr, topic, Options{})

	rs := makeRecords(1500, 200, "e2e")
	rs[7].Message = []byte("multi-byte é € and escapes \"\t\n and invalid \xff")
	rs[8].Fields = []byte(`{"level":"warn","n":3}`)
	for start := 0; start < len(rs); start += 1000 {
		if err := send(t, s, rs[start:min(start+1000, len(rs))]); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	// A topic that does not exist on the real service is a permanent error too.
	gone := newTestSink(t, addr, "projects/"+testProject+"/topics/never-created", Options{})
	if err := send(t, gone, rs[:3]); !collector.IsPermanent(err) {
		t.Errorf("missing topic: %v, want permanent", err)
	}

	want := make(map[string]*collector.Record, len(rs))
	for _, r := range rs {
		want[r.ID.String()] = r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(map[string]bool)
	for len(got) < len(rs) {
		resp, err := client.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: 1000})
		if err != nil {
			t.Fatalf("pull after %d of %d messages: %v", len(got), len(rs), err)
		}
		var acks []string
		for _, rm := range resp.ReceivedMessages {
			acks = append(acks, rm.AckId)
			m := rm.Message
			id := m.Attributes["id"]
			r := want[id]
			if r == nil {
				t.Fatalf("unexpected message id %q", id)
			}
			got[id] = true
			if exp := r.AppendJSON(nil); !bytes.Equal(m.Data, exp) {
				t.Errorf("id %s: data\n got %s\nwant %s", id, m.Data, exp)
			}
			wantAttrs := map[string]string{"namespace": "shop", "pod": "cart-7d9f", "container": "app",
				"stream": "stdout", "source": "pods", "id": id}
			if !maps.Equal(m.Attributes, wantAttrs) {
				t.Errorf("id %s: attributes %v, want %v", id, m.Attributes, wantAttrs)
			}
		}
		if len(acks) > 0 {
			if err := client.SubscriptionAdminClient.Acknowledge(ctx,
				&pb.AcknowledgeRequest{Subscription: sub, AckIds: acks}); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
}

// TestEmulatorOrderedKeys publishes the batches of three pods with ordering_key "{pod}", each
// batch in several requests sent in turn, to the real emulator, and pulls them from a
// subscription with message ordering: each pod's records come back in the order they were sent.
func TestEmulatorOrderedKeys(t *testing.T) {
	addr := pubsubemu.Addr(t)
	client, topic, sub := emulatorTopicOrdered(t, addr, true)
	s := newTestSink(t, addr, topic, Options{OrderingKey: "{pod}", CountThreshold: 40})

	want := map[string][]string{}
	for i := range 3 {
		k := *testSource.Kube()
		k.Pod = fmt.Sprintf("pod-%d", i)
		src := collector.NewSource(uint64(20+i), "pods", &k)
		for batch := range 3 {
			rs := makeRecords(100, 50, fmt.Sprintf("%s-%d", k.Pod, batch))
			for j, r := range rs {
				r.Source = src
				r.ID = collector.MakeID(uint64(20+i), uint64(batch*100+j))
				want[k.Pod] = append(want[k.Pod], r.ID.String())
			}
			b := &collector.SinkBatch{Records: rs, Key: string(s.AppendKey(nil, rs[0])), Seq: uint64(batch)}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.Send(ctx, b)
			cancel()
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[string][]string{}
	for n := 0; n < 900; {
		resp, err := client.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: 1000})
		if err != nil {
			t.Fatalf("pull after %d of 900 messages: %v", n, err)
		}
		var acks []string
		for _, rm := range resp.ReceivedMessages {
			acks = append(acks, rm.AckId)
			got[rm.Message.OrderingKey] = append(got[rm.Message.OrderingKey], rm.Message.Attributes["id"])
			n++
		}
		if len(acks) > 0 {
			if err := client.SubscriptionAdminClient.Acknowledge(ctx,
				&pb.AcknowledgeRequest{Subscription: sub, AckIds: acks}); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
	for pod, ids := range want {
		if !slices.Equal(got[pod], ids) {
			t.Errorf("pod %s: %d messages, not the %d sent in order", pod, len(got[pod]), len(ids))
		}
	}
}
