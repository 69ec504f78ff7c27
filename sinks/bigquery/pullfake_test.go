package bigquery

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// pullFake is an in-process Pub/Sub StreamingPull server for benchmarks: it delivers total
// messages (the data cycling through msgs) as fast as the client's flow control lets it,
// 1000 to a response encoded by hand, and counts the acks. pstest delivers about one message
// per 10ms tick, so it cannot feed a loader at speed; this fake costs little next to the
// client it serves. It keeps the subscriber's limits (max outstanding messages and bytes
// from the stream's first request) as the real service does, and never redelivers.
type pullFake struct {
	pb.UnimplementedSubscriberServer

	msgs  [][]byte
	total int

	mu          sync.Mutex
	next        int // messages sent
	settled     int // acked or nacked
	outBytes    int
	maxMsgs     int
	maxBytes    int
	freed       chan struct{} // signalled when acks free room
	acks, nacks atomic.Int64
}

func startPullFake(tb testing.TB, msgs [][]byte, total int) (*pullFake, []option.ClientOption) {
	tb.Helper()
	f := &pullFake{msgs: msgs, total: total, freed: make(chan struct{}, 1)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	pb.RegisterSubscriberServer(srv, f)
	go srv.Serve(lis)
	tb.Cleanup(srv.Stop)
	return f, []option.ClientOption{
		option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

func (f *pullFake) StreamingPull(stream pb.Subscriber_StreamingPullServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.maxMsgs, f.maxBytes = int(first.GetMaxOutstandingMessages()), int(first.GetMaxOutstandingBytes())
	if f.maxMsgs <= 0 {
		f.maxMsgs = 1000
	}
	if f.maxBytes <= 0 {
		f.maxBytes = 100 << 20
	}
	f.mu.Unlock()
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			f.settle(req)
		}
	}()
	for {
		f.mu.Lock()
		for f.next < f.total && (f.next-f.settled >= f.maxMsgs || f.outBytes >= f.maxBytes) {
			f.mu.Unlock()
			select {
			case <-f.freed:
			case err := <-recvErr:
				return eofNil(err)
			case <-stream.Context().Done():
				return nil
			}
			f.mu.Lock()
		}
		start := f.next
		n := min(1000, f.total-start, f.maxMsgs-(start-f.settled))
		f.next += n
		f.mu.Unlock()
		if n == 0 { // all sent: wait for the client to go
			select {
			case err := <-recvErr:
				return eofNil(err)
			case <-stream.Context().Done():
				return nil
			}
		}
		// A new buffer each time: gRPC may still hold the last one after SendMsg returns.
		resp := make([]byte, 0, n*(len(f.msgs[0])+32))
		sent := 0
		for i := start; i < start+n; i++ {
			resp, sent = f.appendReceived(resp, i), sent+len(f.msgs[i%len(f.msgs)])
		}
		f.mu.Lock()
		f.outBytes += sent
		f.mu.Unlock()
		if err := stream.SendMsg(rawMessage(resp)); err != nil {
			return err
		}
	}
}

// appendReceived appends StreamingPullResponse.received_messages (1) for message i:
// ReceivedMessage{ack_id (1), message (2): PubsubMessage{data (1), message_id (3)}}.
func (f *pullFake) appendReceived(dst []byte, i int) []byte {
	var id [20]byte
	ack := strconv.AppendInt(id[:0], int64(i), 10)
	data := f.msgs[i%len(f.msgs)]
	msgLen := protowire.SizeTag(1) + protowire.SizeBytes(len(data)) + protowire.SizeTag(3) + protowire.SizeBytes(len(ack))
	recvLen := protowire.SizeTag(1) + protowire.SizeBytes(len(ack)) + protowire.SizeTag(2) + protowire.SizeBytes(msgLen)
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(recvLen))
	dst = appendString(dst, 1, ack)
	dst = protowire.AppendTag(dst, 2, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(msgLen))
	dst = appendString(dst, 1, data)
	return appendString(dst, 3, ack)
}

// The client sends acks and modacks as unary calls, and may send them on the stream too.

func (f *pullFake) Acknowledge(_ context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	f.acks.Add(int64(len(req.GetAckIds())))
	f.free(len(req.GetAckIds()))
	return &emptypb.Empty{}, nil
}

func (f *pullFake) ModifyAckDeadline(_ context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	if req.GetAckDeadlineSeconds() == 0 {
		f.nacks.Add(int64(len(req.GetAckIds())))
		f.free(len(req.GetAckIds()))
	}
	return &emptypb.Empty{}, nil
}

// settle counts the acks and nacks (deadline 0) in a stream request and frees their room.
func (f *pullFake) settle(req *pb.StreamingPullRequest) {
	n := len(req.GetAckIds())
	f.acks.Add(int64(n))
	for i, s := range req.GetModifyDeadlineSeconds() {
		if s == 0 && i < len(req.GetModifyDeadlineAckIds()) {
			n++
			f.nacks.Add(1)
		}
	}
	f.free(n)
}

func (f *pullFake) free(n int) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	f.settled += n
	f.outBytes -= n * len(f.msgs[0]) // the messages are about the same size
	f.outBytes = max(f.outBytes, 0)
	f.mu.Unlock()
	select {
	case f.freed <- struct{}{}:
	default:
	}
}

func eofNil(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// rawMessage is a response already encoded.
type rawMessage []byte

// rawCodec sends rawMessage as it is and everything else as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(rawMessage); ok {
		return r, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
