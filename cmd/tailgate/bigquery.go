package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailgate-dev/tailgate/sinks/bigquery"
)

const bigqueryUsage = "usage: tailgate bigquery setup|load --project P --dataset D --table T ... (--help for each)\n"

// cmdBigQuery runs `tailgate bigquery setup|load`.
func cmdBigQuery(ctx context.Context, args []string, std stdio) error {
	if len(args) == 0 {
		return usagef(std, bigqueryUsage, "bigquery: a subcommand is required")
	}
	switch args[0] {
	case "setup":
		return cmdBigQuerySetup(ctx, args[1:], std)
	case "load":
		return cmdBigQueryLoad(ctx, args[1:], std)
	case "-h", "--help", "help":
		fmt.Fprint(std.out, bigqueryUsage)
		return errHelp
	}
	return usagef(std, bigqueryUsage, "bigquery: unknown subcommand %q", args[0])
}

// bqFlags are the flags setup and load share.
type bqFlags struct {
	project, dataset, table, topic, subscription string
	bigqueryEndpoint, storageEndpoint            string
}

func (f *bqFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.project, "project", "", "Google Cloud project (required)")
	fs.StringVar(&f.dataset, "dataset", "", "BigQuery dataset (required)")
	fs.StringVar(&f.table, "table", "", "BigQuery table (required)")
	fs.StringVar(&f.topic, "topic", "", "Pub/Sub topic the pubsub sink publishes to")
	fs.StringVar(&f.subscription, "subscription", "", "Pub/Sub subscription")
	fs.StringVar(&f.bigqueryEndpoint, "bigquery-endpoint", "", "BigQuery REST endpoint URL of an emulator (no credentials)")
	fs.StringVar(&f.storageEndpoint, "storage-endpoint", "", "Storage Write API HOST:PORT of an emulator (plaintext gRPC, no credentials)")
}

func (f *bqFlags) bigqueryOptions() []option.ClientOption {
	if f.bigqueryEndpoint == "" {
		return nil
	}
	return []option.ClientOption{option.WithEndpoint(f.bigqueryEndpoint), option.WithoutAuthentication()}
}

func (f *bqFlags) storageOptions() []option.ClientOption {
	if f.storageEndpoint == "" {
		return nil
	}
	return []option.ClientOption{
		option.WithEndpoint(f.storageEndpoint),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

func cmdBigQuerySetup(ctx context.Context, args []string, std stdio) error {
	stdout := std.out
	fs := newFlags("bigquery setup", "bigquery setup --project P --dataset D --table T --topic T [flags]")
	var f bqFlags
	f.register(fs)
	subType := fs.String("subscription-type", bigquery.SubscriptionBigQuery, "bigquery (Pub/Sub writes the table) or pull (for tailgate bigquery load)")
	deadLetter := fs.String("dead-letter-topic", "", "dead-letter topic (default TOPIC-dead-letter)")
	attempts := fs.Int("max-delivery-attempts", bigquery.DefaultMaxDeliveryAttempts, "deliveries before a message goes to the dead-letter topic (5..100)")
	location := fs.String("location", bigquery.DefaultLocation, "dataset location")
	expiration := fs.Duration("partition-expiration", 0, "drop day partitions older than this (0 keeps them)")
	if err := parseFlags(fs, args, std); err != nil {
		return err
	}
	// PUBSUB_EMULATOR_HOST is honoured by the Pub/Sub client itself.
	rep, err := bigquery.Setup(ctx, bigquery.SetupOptions{
		Project: f.project, Dataset: f.dataset, Table: f.table, Topic: f.topic,
		Subscription: f.subscription, SubscriptionType: *subType,
		DeadLetterTopic: *deadLetter, MaxDeliveryAttempts: *attempts,
		Location: *location, PartitionExpiration: *expiration,
		BigQueryOptions: f.bigqueryOptions(),
	})
	if rep != nil {
		if werr := rep.WriteText(stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if len(rep.Drift) > 0 {
		return fmt.Errorf("bigquery setup: %d differences from the expected schema or subscription (nothing was changed)", len(rep.Drift))
	}
	return nil
}

func cmdBigQueryLoad(ctx context.Context, args []string, std stdio) error {
	stderr := std.err
	fs := newFlags("bigquery load", "bigquery load --project P --dataset D --table T --subscription S [flags]")
	var f bqFlags
	f.register(fs)
	deadLetter := fs.String("dead-letter-topic", "", "topic for malformed messages and rejected rows (empty: nack them)")
	listen := fs.String("metrics-listen", "", "address to serve /metrics on (empty: none)")
	inFlight := fs.Int("max-in-flight", bigquery.DefaultMaxInFlight, "AppendRows calls in flight")
	shutdown := fs.Duration("shutdown-timeout", bigquery.DefaultShutdownTimeout, "how long to finish in-flight appends after SIGTERM")
	if err := parseFlags(fs, args, std); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel()})).With("component", "bigquery-loader")
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoCollector(currentBuild()))

	l, err := bigquery.NewLoader(ctx, bigquery.LoaderOptions{
		Project: f.project, Subscription: f.subscription, Dataset: f.dataset, Table: f.table,
		DeadLetterTopic: *deadLetter, MaxInFlight: *inFlight, ShutdownTimeout: *shutdown,
		StorageOptions: f.storageOptions(),
		Registerer:     reg, Log: log,
	})
	if err != nil {
		return err
	}
	defer l.Close()

	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fmt.Errorf("metrics listen %s: %w", *listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv, ln := newMetricsServer(ln, mux, false, metricsLimits())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", "err", err)
			}
		}()
		defer srv.Close()
		log.Info("serving metrics", "addr", ln.Addr().String())
	}
	log.Info("loading", "subscription", f.subscription, "table", f.project+"."+f.dataset+"."+f.table)
	return l.Run(ctx)
}
