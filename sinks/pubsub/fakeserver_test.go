package pubsub

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// ackServer is a minimal Publisher service that acknowledges every request. Unlike pstest it
// takes requests up to the real 10 MB limit (pstest keeps gRPC's 4 MiB default), costs next to
// nothing per message (so benchmarks measure the sink and the client), and records each
// request's size and message count.
type ackServer struct {
	pb.UnimplementedPublisherServer
	ids  []string
	keep bool // keep the messages (tests), or only count them (benchmarks)

	mu       sync.Mutex
	requests []requestStat
	messages []*pb.PubsubMessage
}

type requestStat struct{ count, bytes int }

func newAckServer(t testing.TB, keep bool, opts ...grpc.ServerOption) (*ackServer, string) {
	t.Helper()
	a := &ackServer{keep: keep, ids: make([]string, MaxRequestMessages)}
	for i := range a.ids {
		a.ids[i] = strconv.Itoa(i)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Above the service's 10 MB so that the test, not the server, checks the limit.
	g := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(32<<20), grpc.ForceServerCodec(countingCodec{keep: keep}))...)
	pb.RegisterPublisherServer(g, a)
	go g.Serve(l)
	t.Cleanup(g.Stop)
	return a, l.Addr().String()
}

func (a *ackServer) Publish(_ context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	n := len(req.Messages)
	st := requestStat{count: n}
	if a.keep {
		st.bytes = proto.Size(req)
	}
	a.mu.Lock()
	a.requests = append(a.requests, st)
	if a.keep {
		a.messages = append(a.messages, req.Messages...)
	}
	a.mu.Unlock()
	if n > len(a.ids) {
		// Let the caller see the breach as a count mismatch instead of a panic here.
		n = len(a.ids)
	}
	return &pb.PublishResponse{MessageIds: a.ids[:n]}, nil
}

// countingCodec decodes publish requests fully only when the server keeps messages; for
// benchmarks it only counts them, so the fake costs little next to the client it serves.
type countingCodec struct{ keep bool }

var emptyMessages = make([]*pb.PubsubMessage, 2*MaxRequestMessages)

func (countingCodec) Name() string { return "proto" }

func (countingCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }

func (c countingCodec) Unmarshal(data []byte, v any) error {
	req, ok := v.(*pb.PublishRequest)
	if c.keep || !ok {
		return proto.Unmarshal(data, v.(proto.Message))
	}
	n := 0
	for len(data) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(data)
		if tagLen < 0 {
			return protowire.ParseError(tagLen)
		}
		valLen := protowire.ConsumeFieldValue(num, typ, data[tagLen:])
		if valLen < 0 {
			return protowire.ParseError(valLen)
		}
		if num == 2 {
			n++
		}
		data = data[tagLen+valLen:]
	}
	req.Messages = emptyMessages[:min(n, len(emptyMessages))]
	return nil
}

func (a *ackServer) stats() ([]requestStat, []*pb.PubsubMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]requestStat(nil), a.requests...), append([]*pb.PubsubMessage(nil), a.messages...)
}
