package pubsub

import (
	"bytes"
	"context"
	"fmt"
	"maps"
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
		&pb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 60}); err != nil {
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
