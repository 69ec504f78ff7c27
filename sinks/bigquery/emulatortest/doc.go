// Package emulatortest is the end-to-end test of the BigQuery path against
// github.com/goccy/bigquery-emulator running in-process: Setup creates the dataset, table,
// topics and pull subscription; envelopes published to Pub/Sub (pstest) go through the
// Loader and the Storage Write API into the emulator; the SQL in deploy/bigquery runs
// over what landed.
//
// TestFullChainWithCrashes runs the whole path as deployed: the tailgate binary as agent
// (tailing CRI logs laid out as /var/log/containers and /var/log/pods, with partial lines and
// a rename rotation, and taking forward records from fluent-logger-golang with acks) into its
// disk buffer and pubsub sink, Pub/Sub, the same binary as loader, and the emulator. The agent
// and the loader are each SIGKILLed and restarted while data flows; the dedup view must then
// hold every acknowledged record exactly once. Set TAILGATE_FULLCHAIN_DIR to keep the log
// tree, the buffer and both processes' logs.
//
// TestFullChainRealEmulator runs the same chain on the Cloud SDK's Pub/Sub emulator, with the
// agent SIGKILLed. The loader's crash is tested on pstest only: after a streaming-pull subscriber is
// SIGKILLed with messages leased, that emulator (0.8.20) keeps dispatching to the dead
// stream, so a new subscriber receives in 60-second steps and still lacks messages after
// minutes (with a dead-letter policy, as setup creates, some are never redelivered to it).
// A plain pubsub.Subscriber shows the same, so it is the emulator's, not the loader's.
//
// It is a module of its own so that the main module's go test ./... never compiles the
// emulator (minutes of CPU and about 6 GiB of RAM for one package). Run it without -race:
//
//	cd sinks/bigquery/emulatortest && go test -count=1 -timeout 40m ./...
//
// The emulator is not BigQuery. What it cannot show (and the test therefore does not
// claim): JSON inside a RECORD arrives double-encoded through the Write API, appends over
// 4 MiB are refused (BigQuery: 10 MB), there are no per-row errors, re-creating a dataset
// answers 500 instead of 409, rows of two tables written over one connection can mix (the
// test uses one table), and it runs no scripts (queries.sql's DECLARE is inlined, after the
// script as written got through the parser). The test does not show that partitioning,
// clustering or partition expiration prune or expire anything, nor the 10 MB request limit.
package emulatortest
