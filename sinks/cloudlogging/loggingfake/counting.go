package loggingfake

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Counting is an API that acknowledges every WriteLogEntries request without decoding it: it
// only counts the entries of each request with a scan of its top-level fields. For benchmarks,
// so that the fake costs little next to the client it serves.
type Counting struct {
	Addr    string
	entries atomic.Int64
	bytes   atomic.Int64
	reqs    atomic.Int64
	srv     *grpc.Server
}

// StartCounting starts a counting fake on a loopback port; it stops at the end of the test.
func StartCounting(tb testing.TB) *Counting {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &Counting{Addr: ln.Addr().String()}
	c.srv = grpc.NewServer(grpc.MaxRecvMsgSize(4*MaxRequestBytes), grpc.ForceServerCodec(countingCodec{c}))
	loggingpb.RegisterLoggingServiceV2Server(c.srv, countingService{})
	go c.srv.Serve(ln)
	tb.Cleanup(c.srv.Stop)
	return c
}

// Entries, Bytes and Requests return what arrived so far.
func (c *Counting) Entries() int64  { return c.entries.Load() }
func (c *Counting) Bytes() int64    { return c.bytes.Load() }
func (c *Counting) Requests() int64 { return c.reqs.Load() }

type countingService struct {
	loggingpb.UnimplementedLoggingServiceV2Server
}

func (countingService) WriteLogEntries(context.Context, *loggingpb.WriteLogEntriesRequest) (*loggingpb.WriteLogEntriesResponse, error) {
	return &loggingpb.WriteLogEntriesResponse{}, nil
}

type countingCodec struct{ c *Counting }

func (countingCodec) Name() string { return "proto" }

func (countingCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("loggingfake: %T is not a protobuf message", v)
	}
	return proto.Marshal(m)
}

func (cc countingCodec) Unmarshal(data []byte, v any) error {
	if _, ok := v.(*loggingpb.WriteLogEntriesRequest); !ok {
		return proto.Unmarshal(data, v.(proto.Message))
	}
	n := int64(0)
	for b := data; len(b) > 0; {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if num == 4 && typ == protowire.BytesType {
			n++
		}
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	cc.c.entries.Add(n)
	cc.c.bytes.Add(int64(len(data)))
	cc.c.reqs.Add(1)
	return nil
}
