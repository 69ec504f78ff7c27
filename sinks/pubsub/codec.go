package pubsub

import (
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// publishCodec is the gRPC codec of the sink's connection. It writes PublishRequests itself:
// the generic protobuf encoder walks the attributes map through reflection, allocating for
// every key and value, which made encoding the largest per-record cost of the sink. The
// request is written into a buffer of gRPC's pool, which gRPC returns once it is on the wire,
// so a batch's request costs no allocation either. Every other message (responses, admin
// calls) goes to gRPC's own protobuf codec.
type publishCodec struct{}

// protoCodec is gRPC's protobuf codec, registered by its package.
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

func (publishCodec) Name() string { return grpcproto.Name }

func (publishCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*pb.PublishRequest)
	if !ok || !plainPublish(req) {
		return protoCodec.Marshal(v)
	}
	size := publishRequestSize(req)
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(appendPublishRequest(make([]byte, 0, size), req))}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = appendPublishRequest((*buf)[:0], req)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (publishCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return protoCodec.Unmarshal(data, v)
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
