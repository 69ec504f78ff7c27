package bigquery

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// fakeBQ answers the BigQuery REST calls Setup makes (datasets and tables get/insert) and
// records them.
type fakeBQ struct {
	mu       sync.Mutex
	requests []string          // "GET /projects/p/datasets/d"
	objects  map[string][]byte // path of the resource -> its JSON
}

func startFakeBQ(t *testing.T) (*fakeBQ, []option.ClientOption) {
	f := &fakeBQ{objects: map[string][]byte{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, []option.ClientOption{option.WithEndpoint(srv.URL), option.WithoutAuthentication()}
}

func (f *fakeBQ) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if i := strings.Index(path, "/projects/"); i >= 0 {
		path = path[i:]
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+path)
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodGet:
		obj, ok := f.objects[path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":404,"message":"Not found: `+path+`"}}`)
			return
		}
		w.Write(obj)
	case http.MethodPost:
		var ref struct {
			DatasetReference struct{ DatasetID string } `json:"datasetReference"`
			TableReference   struct{ TableID string }   `json:"tableReference"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		id := ref.TableReference.TableID
		if strings.HasSuffix(path, "/datasets") {
			id = ref.DatasetReference.DatasetID
		}
		key := path + "/" + id
		if _, ok := f.objects[key]; ok {
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":409,"message":"Already Exists"}}`)
			return
		}
		f.objects[key] = body
		w.Write(body)
	case http.MethodPatch:
		obj, ok := f.objects[path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var cur, patch map[string]any
		if json.Unmarshal(obj, &cur) != nil || json.Unmarshal(body, &patch) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for k, v := range patch {
			cur[k] = v
		}
		out, _ := json.Marshal(cur)
		f.objects[path] = out
		w.Write(out)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *fakeBQ) object(path string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m map[string]any
	json.Unmarshal(f.objects[path], &m)
	return m
}

func setupEnv(t *testing.T) (*fakeBQ, SetupOptions, *pstest.Server) {
	t.Helper()
	bq, bqOpts := startFakeBQ(t)
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	return bq, SetupOptions{
		Project: "p", Dataset: "logs", Table: "records", Topic: "records",
		PartitionExpiration: 30 * 24 * time.Hour,
		BigQueryOptions:     bqOpts,
		PubSubOptions: []option.ClientOption{
			option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		},
	}, srv
}

func TestSetupCreatesThenIsIdempotent(t *testing.T) {
	bq, opts, _ := setupEnv(t)
	ctx := context.Background()
	rep, err := Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantCreated := []string{
		"dataset p.logs",
		"table p.logs.records",
		"topic projects/p/topics/records",
		"topic projects/p/topics/records-dead-letter",
		"subscription projects/p/subscriptions/records-dead-letter-sub",
		"subscription projects/p/subscriptions/records-bigquery",
	}
	if strings.Join(rep.Created, "\n") != strings.Join(wantCreated, "\n") {
		t.Errorf("created:\n%s\nwant:\n%s", strings.Join(rep.Created, "\n"), strings.Join(wantCreated, "\n"))
	}
	if len(rep.Drift) != 0 || len(rep.Roles) == 0 {
		t.Errorf("drift %v, roles %d", rep.Drift, len(rep.Roles))
	}

	table := bq.object("/projects/p/datasets/logs/tables/records")
	tp, _ := table["timePartitioning"].(map[string]any)
	if tp["field"] != "time" || tp["type"] != "DAY" || tp["expirationMs"] != "2592000000" {
		t.Errorf("timePartitioning = %v", tp)
	}
	cl, _ := table["clustering"].(map[string]any)
	if got, _ := json.Marshal(cl["fields"]); string(got) != `["namespace","pod"]` {
		t.Errorf("clustering = %s", got)
	}
	schema, _ := json.Marshal(table["schema"])
	for _, want := range []string{`"name":"time","type":"TIMESTAMP"`, `"name":"labels","type":"JSON"`, `"name":"kubernetes"`} {
		if !bytes.Contains(schema, []byte(want)) {
			t.Errorf("schema lacks %s: %s", want, schema)
		}
	}

	// The subscription Pub/Sub got.
	c, err := pubsub.NewClient(ctx, "p", opts.PubSubOptions...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: "projects/p/subscriptions/records-bigquery"})
	if err != nil {
		t.Fatal(err)
	}
	if bc := sub.GetBigqueryConfig(); bc.GetTable() != "p.logs.records" || !bc.GetUseTableSchema() || !bc.GetDropUnknownFields() {
		t.Errorf("bigquery config = %v", bc)
	}
	if dl := sub.GetDeadLetterPolicy(); dl.GetDeadLetterTopic() != "projects/p/topics/records-dead-letter" || dl.GetMaxDeliveryAttempts() != 5 {
		t.Errorf("dead-letter policy = %v", dl)
	}

	// Second run: nothing created, everything found, no drift.
	rep, err = Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 0 || len(rep.Existing) != len(wantCreated) || len(rep.Drift) != 0 {
		t.Errorf("second run: created %v, existing %v, drift %v", rep.Created, rep.Existing, rep.Drift)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "roles/bigquery.dataEditor") {
		t.Errorf("report text (%v):\n%s", err, text.String())
	}
}

func TestSetupReportsDriftAndLeavesTableAlone(t *testing.T) {
	bq, opts, _ := setupEnv(t)
	bq.objects["/projects/p/datasets/logs"] = []byte(`{"datasetReference":{"projectId":"p","datasetId":"logs"}}`)
	old := []byte(`{"tableReference":{"projectId":"p","datasetId":"logs","tableId":"records"},
		"schema":{"fields":[{"name":"id","type":"STRING","mode":"REQUIRED"},{"name":"time","type":"STRING","mode":"REQUIRED"},
		{"name":"legacy","type":"STRING"}]}}`)
	bq.objects["/projects/p/datasets/logs/tables/records"] = old
	rep, err := Setup(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	drift := strings.Join(rep.Drift, "\n")
	for _, want := range []string{"column time: type STRING, want TIMESTAMP", "missing column kubernetes", "extra column legacy", `partitioned on ""`, "clustered by"} {
		if !strings.Contains(drift, want) {
			t.Errorf("drift lacks %q:\n%s", want, drift)
		}
	}
	if string(bq.objects["/projects/p/datasets/logs/tables/records"]) != string(old) {
		t.Error("Setup changed a drifted table")
	}
	for _, r := range bq.requests {
		if strings.HasPrefix(r, "POST") || strings.HasPrefix(r, "PATCH") || strings.HasPrefix(r, "PUT") {
			t.Errorf("Setup wrote to BigQuery: %s", r)
		}
	}
	if len(rep.Skipped) != 1 {
		t.Errorf("skipped = %v, want the BigQuery subscription", rep.Skipped)
	}
}

func TestSetupPullSubscription(t *testing.T) {
	_, opts, _ := setupEnv(t)
	opts.SubscriptionType = SubscriptionPull
	rep, err := Setup(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Created, "\n"), "subscription projects/p/subscriptions/records-loader") {
		t.Errorf("created %v", rep.Created)
	}
	// Asking for the other type over an existing subscription is drift, not a change.
	opts.SubscriptionType = SubscriptionBigQuery
	opts.Subscription = "records-loader"
	rep, err = Setup(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Drift, "\n"), "is not a BigQuery subscription") {
		t.Errorf("drift %v", rep.Drift)
	}
}

func TestSetupOptionErrors(t *testing.T) {
	f := func(mod func(*SetupOptions), want string) {
		t.Helper()
		o := SetupOptions{Project: "p", Dataset: "d", Table: "t", Topic: "x"}
		mod(&o)
		_, err := Setup(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v, want %q", err, want)
		}
	}
	f(func(o *SetupOptions) { o.Project = "" }, "project is required")
	f(func(o *SetupOptions) { o.SubscriptionType = "push" }, `subscription type "push"`)
	f(func(o *SetupOptions) { o.MaxDeliveryAttempts = 2 }, "5..100")
	f(func(o *SetupOptions) { o.PartitionExpiration = -time.Hour }, "negative partition expiration")
}

// TestSetupAddsNewColumnsToAnOlderTable: a table made before the watch's columns existed
// (kubernetes.workload, workload_kind, image, annotations) gets them added in place, with
// nothing else changed, and the BigQuery subscription is then created over it.
func TestSetupAddsNewColumnsToAnOlderTable(t *testing.T) {
	bq, opts, _ := setupEnv(t)
	bq.objects["/projects/p/datasets/logs"] = []byte(`{"datasetReference":{"projectId":"p","datasetId":"logs"}}`)
	var fields []map[string]any
	if err := json.Unmarshal(SchemaJSON(), &fields); err != nil {
		t.Fatal(err)
	}
	newer := map[string]bool{"workload": true, "workload_kind": true, "image": true, "annotations": true}
	for _, f := range fields {
		if f["name"] != "kubernetes" {
			continue
		}
		var kept []any
		for _, sub := range f["fields"].([]any) {
			if !newer[sub.(map[string]any)["name"].(string)] {
				kept = append(kept, sub)
			}
		}
		f["fields"] = kept
	}
	old, _ := json.Marshal(map[string]any{
		"tableReference":   map[string]string{"projectId": "p", "datasetId": "logs", "tableId": "records"},
		"schema":           map[string]any{"fields": fields},
		"timePartitioning": map[string]string{"type": "DAY", "field": "time"},
		"clustering":       map[string]any{"fields": []string{"namespace", "pod"}},
		"etag":             "e1",
	})
	const tablePath = "/projects/p/datasets/logs/tables/records"
	bq.objects[tablePath] = old
	rep, err := Setup(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := "table p.logs.records: added columns kubernetes.workload, kubernetes.workload_kind, kubernetes.image, kubernetes.annotations"
	if len(rep.Updated) != 1 || rep.Updated[0] != want {
		t.Errorf("updated %v, want [%s]", rep.Updated, want)
	}
	if len(rep.Drift) != 0 || len(rep.Skipped) != 0 {
		t.Errorf("drift %v, skipped %v", rep.Drift, rep.Skipped)
	}
	schema, _ := json.Marshal(bq.object(tablePath)["schema"])
	for _, col := range []string{`"name":"workload"`, `"name":"workload_kind"`, `"name":"image"`, `"name":"annotations","type":"JSON"`, `"name":"labels"`} {
		if !bytes.Contains(schema, []byte(col)) {
			t.Errorf("schema after setup lacks %s: %s", col, schema)
		}
	}
	if !strings.Contains(strings.Join(rep.Created, "\n"), "subscription projects/p/subscriptions/records-bigquery") {
		t.Errorf("subscription not created over the updated table: %v", rep.Created)
	}
	var patches int
	for _, r := range bq.requests {
		if strings.HasPrefix(r, "PATCH ") {
			patches++
		}
	}
	if patches != 1 {
		t.Errorf("%d PATCH requests, want 1: %v", patches, bq.requests)
	}
	// Run again: nothing left to add.
	rep, err = Setup(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Updated) != 0 || len(rep.Drift) != 0 {
		t.Errorf("second run: updated %v, drift %v", rep.Updated, rep.Drift)
	}
}
