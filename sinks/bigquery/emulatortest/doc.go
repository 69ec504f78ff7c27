// Package emulatortest is the end-to-end test of the BigQuery path against
// github.com/goccy/bigquery-emulator running in-process: Setup creates the dataset, table,
// topics and pull subscription; envelopes published to Pub/Sub (pstest) go through the
// Loader and the Storage Write API into the emulator; the SQL in deploy/bigquery runs
// over what landed.
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
