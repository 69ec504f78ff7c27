//go:build !race

package emulatortest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/goccy/bigquery-emulator/server"
	"github.com/goccy/bigquery-emulator/types"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// bqEmulator is the emulator serving REST (BigQuery API) and gRPC (Storage Write API) on
// loopback ports, as its binary does with --port and --grpc-port.
type bqEmulator struct {
	restURL  string // http://127.0.0.1:N
	grpcAddr string // 127.0.0.1:M, plaintext
}

func startBigQuery(t *testing.T, project string) *bqEmulator {
	t.Helper()
	srv, err := server.New(server.TempStorage)
	if err != nil {
		t.Fatalf("bigquery emulator: %v", err)
	}
	if err := srv.SetProject(project); err != nil {
		t.Fatalf("bigquery emulator: set project: %v", err)
	}
	if err := srv.Load(server.StructSource(types.NewProject(project))); err != nil {
		t.Fatalf("bigquery emulator: load project: %v", err)
	}
	type addrs struct{ rest, grpc string }
	bound := make(chan addrs, 1)
	srv.SetListenCallback(func(rest, grpc string) { bound <- addrs{rest, grpc} })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), "127.0.0.1:0", "127.0.0.1:0") }()
	var a addrs
	select {
	case a = <-bound:
	case err := <-served:
		t.Fatalf("bigquery emulator: serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("bigquery emulator: not listening after 30s")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("bigquery emulator: stop: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("bigquery emulator: serve: %v", err)
		}
	})
	return &bqEmulator{restURL: "http://" + a.rest, grpcAddr: a.grpc}
}

// restOptions are what `tailgate bigquery ... --bigquery-endpoint URL` gives the clients.
func (e *bqEmulator) restOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(e.restURL), option.WithoutAuthentication()}
}

// storageOptions are what `tailgate bigquery load --storage-endpoint HOST:PORT` gives the
// Storage Write client.
func (e *bqEmulator) storageOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(e.grpcAddr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

func startPubSub(t *testing.T) (*pstest.Server, []option.ClientOption) {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	return srv, []option.ClientOption{
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}
