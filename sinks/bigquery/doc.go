// Package bigquery owns the BigQuery end of the log path: the table that holds the DESIGN.md
// envelope (schema.json, partitioned by day on time and clustered by namespace and pod),
// Setup, which creates the dataset, table, topic and subscription that feed it, and Loader,
// which moves envelopes from a Pub/Sub pull subscription into the table through the Storage
// Write API.
//
// The Loader acknowledges a Pub/Sub message only after the AppendRows call that carried its
// row succeeded, or after the message was published to the dead-letter topic with its reason.
// Anything else is nacked so Pub/Sub redelivers it: the path is at-least-once, and the id
// column lets queries (dedup_view.sql in deploy/bigquery) drop the duplicates.
//
// Setup never alters what exists: a table whose schema differs from schema.json is reported
// as drift, not migrated.
//
// schema.json here is the one source of truth for the table; deploy/bigquery/schema.json is a
// copy that a test keeps identical (go generate refreshes it).
package bigquery

//go:generate cp schema.json ../../deploy/bigquery/schema.json
