package pubsub

import (
	"fmt"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// publishCodec is the gRPC codec of the sink's connection. It writes PublishRequests itself:
// the generic protobuf encoder walks the attributes map through reflection, allocating for
// every key and value, which made encoding the largest per-record cost of the sink. Every
// other message (responses, admin calls) goes through the protobuf library unchanged.
type publishCodec struct{}

func (publishCodec) Name() string { return "proto" }

func (publishCodec) Marshal(v any) ([]byte, error) {
	if req, ok := v.(*pb.PublishRequest); ok && plainPublish(req) {
		return appendPublishRequest(make([]byte, 0, publishRequestSize(req)), req), nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("pubsub codec: %T is not a protobuf message", v)
	}
	return proto.Marshal(m)
}

func (publishCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("pubsub codec: %T is not a protobuf message", v)
	}
	return proto.Unmarshal(data, m)
}

// plainPublish reports whether req has only the fields a publisher sets (topic; data,
// attributes, ordering key), which are the ones appendPublishRequest writes.
func plainPublish(req *pb.PublishRequest) bool {
	for _, m := range req.Messages {
		if m == nil || m.MessageId != "" || m.PublishTime != nil {
			return false
		}
	}
	return true
}

// PublishRequest: topic = 1, messages = 2. PubsubMessage: data = 1, attributes = 2 (entries
// key = 1, value = 2), ordering_key = 5.

func publishRequestSize(req *pb.PublishRequest) int {
	n := 0
	if req.Topic != "" {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(req.Topic))
	}
	for _, m := range req.Messages {
		n += protowire.SizeTag(2) + protowire.SizeBytes(messageSize(m))
	}
	return n
}

func messageSize(m *pb.PubsubMessage) int {
	n := 0
	if len(m.Data) > 0 {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(m.Data))
	}
	for k, v := range m.Attributes {
		n += protowire.SizeTag(2) + protowire.SizeBytes(entrySize(k, v))
	}
	if m.OrderingKey != "" {
		n += protowire.SizeTag(5) + protowire.SizeBytes(len(m.OrderingKey))
	}
	return n
}

// entrySize is a map entry's size; like the protobuf library, key and value are always written.
func entrySize(k, v string) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
}

func appendPublishRequest(b []byte, req *pb.PublishRequest) []byte {
	if req.Topic != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, req.Topic)
	}
	for _, m := range req.Messages {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(messageSize(m)))
		if len(m.Data) > 0 {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendBytes(b, m.Data)
		}
		for k, v := range m.Attributes {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, k)
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, v)
		}
		if m.OrderingKey != "" {
			b = protowire.AppendTag(b, 5, protowire.BytesType)
			b = protowire.AppendString(b, m.OrderingKey)
		}
	}
	return b
}
