//go:build !race

package emulatortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	tgbq "github.com/tailgate-dev/tailgate/sinks/bigquery"
)

const (
	project = "tailgate-e2e"
	dataset = "logs"
	table   = "records" // the name deploy/bigquery's SQL uses
	topic   = "records"
	subID   = "records-loader"
)

// TestEndToEnd: Setup (twice) → publish envelopes with duplicates → Loader → Storage Write
// API → the dedup view and queries.sql return what the records say.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bqe := startBigQuery(t, project)
	ps, psOpts := startPubSub(t)

	setup := tgbq.SetupOptions{
		Project: project, Dataset: dataset, Table: table, Topic: topic,
		Subscription: subID, SubscriptionType: tgbq.SubscriptionPull,
		BigQueryOptions: bqe.restOptions(), PubSubOptions: psOpts,
	}
	rep, err := tgbq.Setup(ctx, setup)
	if err != nil {
		t.Fatalf("first setup: %v", err)
	}
	wantCreated := []string{
		"dataset " + project + "." + dataset,
		"table " + project + "." + dataset + "." + table,
		"topic projects/" + project + "/topics/" + topic,
		"topic projects/" + project + "/topics/" + topic + "-dead-letter",
		"subscription projects/" + project + "/subscriptions/" + topic + "-dead-letter-sub",
		"subscription projects/" + project + "/subscriptions/" + subID,
	}
	if !slices.Equal(rep.Created, wantCreated) || len(rep.Existing) > 0 || len(rep.Drift) > 0 {
		t.Fatalf("first setup: created %q existing %q drift %q; want created %q", rep.Created, rep.Existing, rep.Drift, wantCreated)
	}
	rep, err = tgbq.Setup(ctx, setup)
	if err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if len(rep.Created) > 0 || !slices.Equal(rep.Existing, wantCreated) || len(rep.Drift) > 0 {
		t.Fatalf("second setup: created %q existing %q drift %q; want all existing, no drift", rep.Created, rep.Existing, rep.Drift)
	}

	f := newFixture(time.Now())
	ids := publish(ctx, t, psOpts, f)
	load(ctx, t, ps, psOpts, bqe, ids)
	checkDeadLetter(t, ps, ids[len(ids)-1])

	bq, err := bigquery.NewClient(ctx, project, bqe.restOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer bq.Close()
	q := &querier{ctx: ctx, bq: bq}

	n := q.rows(t, "SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM `"+project+"."+dataset+"."+table+"`")
	if got := n[0]; got["n"] != int64(len(f.published)) || got["ids"] != int64(len(f.records)) {
		t.Fatalf("table holds %v rows and %v ids; want %d rows (duplicates included) and %d ids",
			got["n"], got["ids"], len(f.published), len(f.records))
	}
	q.exec(t, deploySQL(t, "dedup_view.sql"))

	var labelsDoubleEncoded bool
	t.Run("dedup view: every id once, columns as written", func(t *testing.T) {
		labelsDoubleEncoded = checkDedup(t, q, f)
	})
	t.Run("queries.sql", func(t *testing.T) {
		checkQueries(t, q, f, labelsDoubleEncoded)
	})
}

// malformed is a message that can never become a row: the loader dead-letters it and keeps
// loading the rest.
const malformed = "not an envelope"

// publish sends every fixture message (duplicates included) and then malformed through the
// Pub/Sub client, and returns the server's message ids in that order.
func publish(ctx context.Context, t *testing.T, psOpts []option.ClientOption, f *fixture) []string {
	t.Helper()
	c, err := pubsub.NewClient(ctx, project, psOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pub := c.Publisher(topic)
	defer pub.Stop()
	var results []*pubsub.PublishResult
	for _, r := range f.published {
		k := r.pod.src.Kube()
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: r.data, Attributes: map[string]string{
			"namespace": k.Namespace, "pod": k.Pod, "container": k.Container, "stream": r.stream, "id": r.id,
		}}))
	}
	results = append(results, pub.Publish(ctx, &pubsub.Message{Data: []byte(malformed)}))
	ids := make([]string, len(results))
	for i, res := range results {
		if ids[i], err = res.Get(ctx); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	return ids
}

// load runs the Loader until every message is acked, stops it, and checks that each
// message was delivered once, and all but the last (malformed) were appended.
func load(ctx context.Context, t *testing.T, ps *pstest.Server, psOpts []option.ClientOption, bqe *bqEmulator, ids []string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	l, err := tgbq.NewLoader(runCtx, tgbq.LoaderOptions{
		Project: project, Subscription: subID, Dataset: dataset, Table: table,
		DeadLetterTopic: topic + "-dead-letter",
		MaxBatchRows:    64, // several appends, several in flight
		BatchDelay:      20 * time.Millisecond,
		PubSubOptions:   psOpts, StorageOptions: bqe.storageOptions(),
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	deadline := time.Now().Add(3 * time.Minute)
	for acked := 0; acked < len(ids); {
		acked = 0
		for _, id := range ids {
			if ps.Message(id).Acks > 0 {
				acked++
			}
		}
		select {
		case err := <-done:
			t.Fatalf("loader stopped with %d of %d messages acked: %v", acked, len(ids), err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages acked after 3 minutes", acked, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("loader run: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("loader close: %v", err)
	}
	for _, id := range ids {
		if m := ps.Message(id); m.Deliveries != 1 || m.Acks != 1 {
			t.Fatalf("message %s: %d deliveries, %d acks; want 1 and 1", id, m.Deliveries, m.Acks)
		}
	}
	want := fmt.Sprintf(`
# HELP tailgate_loader_rows_total Rows handled by the BigQuery loader, by result (appended, dead_letter, nacked).
# TYPE tailgate_loader_rows_total counter
tailgate_loader_rows_total{result="appended"} %d
tailgate_loader_rows_total{result="dead_letter"} 1
tailgate_loader_rows_total{result="nacked"} 0
`, len(ids)-1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tailgate_loader_rows_total"); err != nil {
		t.Error(err)
	}
}

// checkDeadLetter checks that the malformed message reached the dead-letter topic with its
// reason.
func checkDeadLetter(t *testing.T, ps *pstest.Server, malformedID string) {
	t.Helper()
	var got []*pstest.Message
	for _, m := range ps.Messages() {
		if m.Topic == "projects/"+project+"/topics/"+topic+"-dead-letter" {
			got = append(got, m)
		}
	}
	if len(got) != 1 || string(got[0].Data) != malformed ||
		got[0].Attributes["tailgate_message_id"] != malformedID || got[0].Attributes["tailgate_dead_letter_reason"] == "" {
		t.Errorf("dead-letter topic holds %d messages; want the malformed one with its reason", len(got))
		for _, m := range got {
			t.Logf("dead letter %q %v", m.Data, m.Attributes)
		}
	}
}

// querier runs SQL through the emulator's REST API, as the bq tool or the console would.
type querier struct {
	ctx context.Context
	bq  *bigquery.Client
}

func (q *querier) rows(t *testing.T, sql string) []map[string]bigquery.Value {
	t.Helper()
	it, err := q.bq.Query(sql).Read(q.ctx)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	var out []map[string]bigquery.Value
	for {
		row := map[string]bigquery.Value{}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("query: read rows: %v\n%s", err, sql)
		}
		out = append(out, row)
	}
}

func (q *querier) exec(t *testing.T, sql string) {
	t.Helper()
	job, err := q.bq.Query(sql).Run(q.ctx)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, sql)
	}
	st, err := job.Wait(q.ctx)
	if err == nil {
		err = st.Err()
	}
	if err != nil {
		t.Fatalf("run: %v\n%s", err, sql)
	}
}

// deploySQL reads a file of deploy/bigquery with PROJECT.DATASET filled in.
func deploySQL(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../../deploy/bigquery/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "PROJECT.DATASET", project+"."+dataset)
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}
