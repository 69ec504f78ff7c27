package pubsub

import (
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestPublishCodecMatchesProtobuf(t *testing.T) {
	f := func(name string, req proto.Message) {
		t.Helper()
		out, err := publishCodec{}.Marshal(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b := out.Materialize()
		out.Free()
		got := req.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(b, got); err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !proto.Equal(got, req) {
			t.Errorf("%s: round trip\n got %v\nwant %v", name, got, req)
		}
		if want := proto.Size(req); len(b) != want {
			t.Errorf("%s: %d bytes, protobuf writes %d", name, len(b), want)
		}
	}
	f("empty", &pb.PublishRequest{})
	f("full", &pb.PublishRequest{Topic: "projects/p/topics/t", Messages: []*pb.PubsubMessage{
		{Data: []byte(`{"id":"1"}`), Attributes: map[string]string{"namespace": "shop", "pod": "p", "empty": "", "": "v"}, OrderingKey: "shop/p"},
		{},
		{Data: make([]byte, 300)},
	}})
	// Big enough for a buffer from gRPC's pool.
	big := &pb.PublishRequest{Topic: "projects/p/topics/t"}
	for range 100 {
		big.Messages = append(big.Messages, &pb.PubsubMessage{Data: make([]byte, 1000), Attributes: map[string]string{"id": "x"}})
	}
	f("pooled", big)
	f("publish time falls back", &pb.PublishRequest{Topic: "t", Messages: []*pb.PubsubMessage{
		{Data: []byte("x"), PublishTime: timestamppb.Now(), MessageId: "m1"}}})
	f("other message", &pb.GetTopicRequest{Topic: "projects/p/topics/t"})

	var resp pb.PublishResponse
	b, _ := proto.Marshal(&pb.PublishResponse{MessageIds: []string{"1", "2"}})
	if err := (publishCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &resp); err != nil || len(resp.MessageIds) != 2 {
		t.Errorf("Unmarshal response: %v %v", resp.MessageIds, err)
	}
}
