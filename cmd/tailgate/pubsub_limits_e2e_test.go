package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/proto"

	"github.com/tailgate-dev/tailgate/sinks/pubsub/pubsubemu"
)

// pubsubTopic creates a topic on the emulator, named uniquely from prefix, with a pull
// subscription of the same name (with message ordering or not); it returns the topic id and
// the subscription's full name.
func pubsubTopic(t *testing.T, admin *pubsub.Client, prefix string, ordered bool) (id, sub string) {
	t.Helper()
	ctx := context.Background()
	id = fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	topic := "projects/" + pubsubTestProject + "/topics/" + id
	sub = "projects/" + pubsubTestProject + "/subscriptions/" + id
	if _, err := admin.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name: sub, Topic: topic, AckDeadlineSeconds: 60, EnableMessageOrdering: ordered}); err != nil {
		t.Fatalf("create subscription: %v", err)
	}
	return id, sub
}

// TestPubSubSplitOrderedAgent runs the agent binary against the real Pub/Sub emulator with
// `ordering_key: "{pod}"`, `max_message_bytes: 2048` and `oversize: split`: two pods write
// ordinary lines around one line too big for a message. On a subscription with message
// ordering, each pod's messages arrive in the order written, every message within 2048 bytes,
// and the big line's parts (flagged with a part attribute) put together are the line.
func TestPubSubSplitOrderedAgent(t *testing.T) {
	addr := pubsubemu.Addr(t)
	admin := pubsubAdmin(t, addr)
	id, sub := pubsubTopic(t, admin, "tailgate-split", true)

	dir := t.TempDir()
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	a := newAgentProc(t, dir, fmt.Sprintf(`node_name: ps-node
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: "%s"}
buffer: {sync: 50ms}
kubernetes: {enabled: false}
inputs:
  - {name: pods, type: tail, paths: ["%s/containers/*.log"], poll_interval: 20ms}
sinks:
  - {name: ps, type: pubsub, project: %s, topic: %s, endpoint: "%s", insecure: true,
     ordering_key: "{pod}", max_message_bytes: 2048, oversize: split}
`, dir, metrics, dir, pubsubTestProject, id, addr))
	a.listens = [][2]string{{"tcp", metrics}}

	// Each pod writes 30 lines, the big one, and 20 more; key names what a message carries.
	w := newCrashWriter(t, dir, 2)
	big := strings.Repeat(`é"x\`, 1200) // 6000 bytes, 8400 once escaped: at least 5 parts
	wantOrder := map[string][]string{}
	var want []string
	for i, cf := range w.files {
		pod := fmt.Sprintf("pod-%d", i)
		var b strings.Builder
		ts := time.Now().UTC().Format(time.RFC3339Nano)
		for j := range 51 {
			msg, key := fmt.Sprintf("%s line %d", pod, j), fmt.Sprintf("%s/%d", pod, j)
			if j == 30 {
				msg, key = big, pod+"/big"
			}
			fmt.Fprintf(&b, "%s stdout F %s\n", ts, msg)
			wantOrder[pod] = append(wantOrder[pod], key)
			want = append(want, key)
		}
		if _, err := cf.f.WriteString(b.String()); err != nil {
			t.Fatal(err)
		}
	}
	a.start()
	defer a.stop()

	// A message's key: "<pod>/<line>", or "<pod>/big" for every part of the big line.
	key := func(m pulledMessage) string {
		e, err := decodePubSubEnvelope(m.data)
		if err != nil {
			return "undecodable"
		}
		if m.attrs["part"] != "" {
			return e.Kubernetes.Pod + "/big"
		}
		pod, line, _ := strings.Cut(e.Message, " line ")
		return pod + "/" + line
	}
	msgs := pullAll(t, admin, sub, want, key, 60*time.Second)

	got := map[string][]string{}
	bigParts := map[string]*strings.Builder{}
	parts := map[string]int{}
	for _, m := range msgs {
		e, err := decodePubSubEnvelope(m.data)
		if err != nil {
			t.Fatalf("message data is not the envelope: %v", err)
		}
		size := proto.Size(&pb.PubsubMessage{Data: m.data, Attributes: m.attrs, OrderingKey: e.Kubernetes.Pod})
		if size > 2048 {
			t.Errorf("message of %d bytes, over max_message_bytes 2048", size)
		}
		k := key(m)
		pod := e.Kubernetes.Pod
		if m.attrs["part"] != "" {
			if bigParts[pod] == nil {
				bigParts[pod] = &strings.Builder{}
			}
			if part := m.attrs["part"]; part != strconv.Itoa(parts[pod]) {
				t.Errorf("pod %s: part %s arrived where part %d was due", pod, part, parts[pod])
			}
			parts[pod]++
			bigParts[pod].WriteString(e.Message)
			if n := len(got[pod]); n > 0 && got[pod][n-1] == k {
				continue // the next part of the same line
			}
		}
		got[pod] = append(got[pod], k)
	}
	for pod, keys := range wantOrder {
		if strings.Join(got[pod], ",") != strings.Join(keys, ",") {
			t.Errorf("pod %s: messages in order\n%v\nwant\n%v", pod, got[pod], keys)
		}
		if bigParts[pod] == nil || bigParts[pod].String() != big || parts[pod] < 5 {
			t.Errorf("pod %s: the big line's %d parts do not put back together", pod, parts[pod])
		}
	}
	m := scrape(t, metrics)
	if s := series("tailgate_sink_oversize_records_total", "sink", "ps", "action", "split"); m[s] != 2 {
		log, _ := os.ReadFile(a.logf.Name())
		t.Errorf("%s = %v, want 2\nagent log:\n%s", s, m[s], log)
	}
}
