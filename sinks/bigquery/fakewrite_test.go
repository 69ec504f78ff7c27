package bigquery

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// fakeWrite is an in-process BigQueryWrite server: it decodes and records appended rows,
// and its reply hook can reject rows or fail the stream. In counting mode (for benchmarks)
// it only counts the rows and their bytes, so it costs little next to the client it serves.
type fakeWrite struct {
	storagepb.UnimplementedBigQueryWriteServer

	counting  bool
	rowCount  atomic.Int64
	callCount atomic.Int64

	mu    sync.Mutex
	rows  []*dynamicpb.Message
	calls int
	// reply, when set, decides the answer to append call n (0-based) of rows; a nil
	// response means success, a non-nil error ends the stream with it.
	reply func(n int, rows []*dynamicpb.Message) (*storagepb.AppendRowsResponse, error)
}

func startFakeWrite(t testing.TB) (*fakeWrite, []option.ClientOption) {
	return serveFakeWrite(t, &fakeWrite{})
}

// startCountingWrite starts a fakeWrite in counting mode.
func startCountingWrite(t testing.TB) (*fakeWrite, []option.ClientOption) {
	f := &fakeWrite{counting: true}
	return serveFakeWrite(t, f, grpc.ForceServerCodec(countingCodec{}))
}

func serveFakeWrite(t testing.TB, f *fakeWrite, opts ...grpc.ServerOption) (*fakeWrite, []option.ClientOption) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(32<<20))...)
	storagepb.RegisterBigQueryWriteServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f, []option.ClientOption{
		option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

func (f *fakeWrite) GetWriteStream(_ context.Context, req *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	return &storagepb.WriteStream{Name: req.GetName(), Type: storagepb.WriteStream_COMMITTED, Location: "US"}, nil
}

func (f *fakeWrite) AppendRows(stream storagepb.BigQueryWrite_AppendRowsServer) error {
	var md protoreflect.MessageDescriptor
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if f.counting {
			f.callCount.Add(1)
			f.rowCount.Add(int64(len(req.GetProtoRows().GetRows().GetSerializedRows())))
			if err := stream.Send(appendOK); err != nil {
				return err
			}
			continue
		}
		pr := req.GetProtoRows()
		if d := pr.GetWriterSchema().GetProtoDescriptor(); d != nil {
			if md, err = messageDescriptor(d); err != nil {
				return status.Errorf(codes.InvalidArgument, "writer schema: %v", err)
			}
		}
		if md == nil {
			return status.Error(codes.InvalidArgument, "no writer schema on the stream")
		}
		var rows []*dynamicpb.Message
		for _, b := range pr.GetRows().GetSerializedRows() {
			m := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(b, m); err != nil {
				return status.Errorf(codes.InvalidArgument, "row: %v", err)
			}
			rows = append(rows, m)
		}
		f.mu.Lock()
		n := f.calls
		f.calls++
		reply := f.reply
		f.mu.Unlock()
		var resp *storagepb.AppendRowsResponse
		if reply != nil {
			resp, err = reply(n, rows)
			if err != nil {
				return err
			}
		}
		if resp == nil {
			f.mu.Lock()
			f.rows = append(f.rows, rows...)
			f.mu.Unlock()
			resp = &storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_AppendResult_{
				AppendResult: &storagepb.AppendRowsResponse_AppendResult{}}}
		}
		resp.WriteStream = req.GetWriteStream()
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

var appendOK = &storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_AppendResult_{
	AppendResult: &storagepb.AppendRowsResponse_AppendResult{}}}

// countingCodec reads an AppendRowsRequest only as far as counting its rows: they come back
// as empty slices, and the other fields are dropped.
type countingCodec struct{}

var emptyRows = make([][]byte, 100_000)

func (countingCodec) Name() string { return "proto" }

func (countingCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }

func (countingCodec) Unmarshal(data []byte, v any) error {
	req, ok := v.(*storagepb.AppendRowsRequest)
	if !ok {
		return proto.Unmarshal(data, v.(proto.Message))
	}
	// AppendRowsRequest.proto_rows (4) -> ProtoData.rows (2) -> ProtoRows.serialized_rows (1).
	n := 0
	err := eachField(data, func(num protowire.Number, v []byte) error {
		if num != 4 {
			return nil
		}
		return eachField(v, func(num protowire.Number, v []byte) error {
			if num != 2 {
				return nil
			}
			return eachField(v, func(num protowire.Number, _ []byte) error {
				if num == 1 {
					n++
				}
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	req.Rows = &storagepb.AppendRowsRequest_ProtoRows{ProtoRows: &storagepb.AppendRowsRequest_ProtoData{
		Rows: &storagepb.ProtoRows{SerializedRows: emptyRows[:min(n, len(emptyRows))]}}}
	return nil
}

// eachField calls fn with the number and, for length-delimited fields, the value of each
// field of the protobuf message in data.
func eachField(data []byte, fn func(protowire.Number, []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(data)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeWrite) stored() []*dynamicpb.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*dynamicpb.Message(nil), f.rows...)
}

func messageDescriptor(dp *descriptorpb.DescriptorProto) (protoreflect.MessageDescriptor, error) {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("fake.proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{dp},
	}, nil)
	if err != nil {
		return nil, err
	}
	return fd.Messages().Get(0), nil
}

// get returns a column of a decoded row ("kubernetes.pod" reaches into the record).
func get(m *dynamicpb.Message, path ...string) protoreflect.Value {
	var v protoreflect.Value
	for i, p := range path {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(p))
		if fd == nil {
			return protoreflect.Value{}
		}
		v = m.Get(fd)
		if i < len(path)-1 {
			m = v.Message().Interface().(*dynamicpb.Message)
		}
	}
	return v
}
