package bigquery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Subscription types for SetupOptions.SubscriptionType.
const (
	SubscriptionBigQuery = "bigquery" // Pub/Sub writes the table itself
	SubscriptionPull     = "pull"     // tailgate bigquery load writes it
)

// Defaults for SetupOptions.
const (
	DefaultLocation            = "US"
	DefaultMaxDeliveryAttempts = 5
	DefaultAckDeadline         = 60 * time.Second
)

// SetupOptions names what Setup creates. Project, Dataset, Table and Topic are required.
type SetupOptions struct {
	Project string
	Dataset string
	Table   string
	Topic   string
	// Subscription defaults to Topic+"-bigquery" or Topic+"-loader", by SubscriptionType.
	Subscription string
	// SubscriptionType is SubscriptionBigQuery (default) or SubscriptionPull.
	SubscriptionType string
	// DeadLetterTopic defaults to Topic+"-dead-letter"; Setup also gives it a pull
	// subscription (DeadLetterTopic+"-sub") so dead letters are kept, not dropped.
	DeadLetterTopic     string
	MaxDeliveryAttempts int           // default DefaultMaxDeliveryAttempts (5..100)
	Location            string        // dataset location, default DefaultLocation
	PartitionExpiration time.Duration // 0: partitions never expire

	// BigQueryOptions and PubSubOptions reach the clients (endpoints of emulators and fakes,
	// credentials). Without them the clients use ADC, and Pub/Sub honours
	// PUBSUB_EMULATOR_HOST.
	BigQueryOptions []option.ClientOption
	PubSubOptions   []option.ClientOption
}

func (o SetupOptions) withDefaults() (SetupOptions, error) {
	for _, f := range []struct{ name, v string }{
		{"project", o.Project}, {"dataset", o.Dataset}, {"table", o.Table}, {"topic", o.Topic},
	} {
		if f.v == "" {
			return o, fmt.Errorf("bigquery setup: %s is required", f.name)
		}
	}
	switch o.SubscriptionType {
	case "":
		o.SubscriptionType = SubscriptionBigQuery
	case SubscriptionBigQuery, SubscriptionPull:
	default:
		return o, fmt.Errorf("bigquery setup: subscription type %q: want %s or %s",
			o.SubscriptionType, SubscriptionBigQuery, SubscriptionPull)
	}
	if o.Subscription == "" {
		suffix := "-bigquery"
		if o.SubscriptionType == SubscriptionPull {
			suffix = "-loader"
		}
		o.Subscription = o.Topic + suffix
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = o.Topic + "-dead-letter"
	}
	if o.MaxDeliveryAttempts == 0 {
		o.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if o.MaxDeliveryAttempts < 5 || o.MaxDeliveryAttempts > 100 {
		return o, fmt.Errorf("bigquery setup: max delivery attempts %d: Pub/Sub allows 5..100", o.MaxDeliveryAttempts)
	}
	if o.Location == "" {
		o.Location = DefaultLocation
	}
	if o.PartitionExpiration < 0 {
		return o, fmt.Errorf("bigquery setup: negative partition expiration %s", o.PartitionExpiration)
	}
	return o, nil
}

// Setup creates what is missing among the dataset, the table, the topic, the dead-letter
// topic (with a subscription that keeps its messages) and the subscription, and leaves what
// exists alone. A table or subscription that exists but differs from what Setup would create
// is listed in Report.Drift, never changed; a BigQuery subscription is not created over a
// drifted table. It returns an error only when a call fails; drift is not an error.
func Setup(ctx context.Context, opts SetupOptions) (*Report, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{opts: o}

	bq, err := bigquery.NewClient(ctx, o.Project, o.BigQueryOptions...)
	if err != nil {
		return nil, fmt.Errorf("bigquery setup: bigquery client: %w", err)
	}
	defer bq.Close()
	if err := setupDataset(ctx, bq, o, rep); err != nil {
		return rep, err
	}
	if err := setupTable(ctx, bq, o, rep); err != nil {
		return rep, err
	}

	ps, err := pubsub.NewClient(ctx, o.Project, o.PubSubOptions...)
	if err != nil {
		return rep, fmt.Errorf("bigquery setup: pubsub client: %w", err)
	}
	defer ps.Close()
	for _, t := range []string{o.Topic, o.DeadLetterTopic} {
		if err := setupTopic(ctx, ps, o.Project, t, rep); err != nil {
			return rep, err
		}
	}
	dlSub := &pubsubpb.Subscription{
		Name:               subName(o.Project, o.DeadLetterTopic+"-sub"),
		Topic:              topicName(o.Project, o.DeadLetterTopic),
		AckDeadlineSeconds: int32(DefaultAckDeadline / time.Second),
	}
	if err := setupSubscription(ctx, ps, dlSub, rep); err != nil {
		return rep, err
	}
	if o.SubscriptionType == SubscriptionBigQuery && len(rep.Drift) > 0 {
		rep.Skipped = append(rep.Skipped, "subscription "+o.Subscription+": not created over a drifted table")
	} else if err := setupSubscription(ctx, ps, wantSubscription(o), rep); err != nil {
		return rep, err
	}
	rep.Roles = roles(o)
	return rep, nil
}

func setupDataset(ctx context.Context, bq *bigquery.Client, o SetupOptions, rep *Report) error {
	ds := bq.Dataset(o.Dataset)
	what := "dataset " + o.Project + "." + o.Dataset
	_, err := ds.Metadata(ctx)
	switch {
	case err == nil:
		rep.Existing = append(rep.Existing, what)
		return nil
	case !isHTTP(err, http.StatusNotFound):
		return fmt.Errorf("bigquery setup: get %s: %w", what, err)
	}
	err = ds.Create(ctx, &bigquery.DatasetMetadata{Location: o.Location})
	switch {
	case err == nil:
		rep.Created = append(rep.Created, what)
	case isHTTP(err, http.StatusConflict): // created meanwhile
		rep.Existing = append(rep.Existing, what)
	default:
		return fmt.Errorf("bigquery setup: create %s: %w", what, err)
	}
	return nil
}

func setupTable(ctx context.Context, bq *bigquery.Client, o SetupOptions, rep *Report) error {
	t := bq.Dataset(o.Dataset).Table(o.Table)
	what := "table " + o.Project + "." + o.Dataset + "." + o.Table
	want := TableMetadata(o.PartitionExpiration)
	md, err := t.Metadata(ctx)
	if err == nil {
		rep.Existing = append(rep.Existing, what)
		diff := tableDiff(md, want)
		if merged, added, ok := addedColumns(md.Schema, want.Schema, diff); ok {
			// An older table lacking only new NULLABLE columns: add them, nothing else changes.
			if _, err := t.Update(ctx, bigquery.TableMetadataToUpdate{Schema: merged}, md.ETag); err != nil {
				return fmt.Errorf("bigquery setup: add columns %v to %s: %w", added, what, err)
			}
			rep.Updated = append(rep.Updated, what+": added columns "+strings.Join(added, ", "))
			return nil
		}
		for _, d := range diff {
			rep.Drift = append(rep.Drift, what+": "+d)
		}
		return nil
	}
	if !isHTTP(err, http.StatusNotFound) {
		return fmt.Errorf("bigquery setup: get %s: %w", what, err)
	}
	err = t.Create(ctx, want)
	switch {
	case err == nil:
		rep.Created = append(rep.Created, what)
	case isHTTP(err, http.StatusConflict):
		rep.Existing = append(rep.Existing, what)
	default:
		return fmt.Errorf("bigquery setup: create %s: %w", what, err)
	}
	return nil
}

// addedColumns returns have with the columns of want it lacks, when that is the whole
// difference (diff holds only "missing column" lines) and every missing column is NULLABLE:
// the one schema change BigQuery allows on a table in place that rows already loaded and
// writers that do not know the columns both survive.
func addedColumns(have, want bigquery.Schema, diff []string) (bigquery.Schema, []string, bool) {
	if len(diff) == 0 {
		return nil, nil, false
	}
	for _, d := range diff {
		if !strings.HasPrefix(d, "missing column ") {
			return nil, nil, false
		}
	}
	var added []string
	merged, ok := mergeColumns("", have, want, &added)
	return merged, added, ok && len(added) > 0
}

func mergeColumns(prefix string, have, want bigquery.Schema, added *[]string) (bigquery.Schema, bool) {
	out := make(bigquery.Schema, 0, len(want))
	byName := map[string]*bigquery.FieldSchema{}
	for _, f := range have {
		c := *f
		out = append(out, &c)
		byName[strings.ToLower(f.Name)] = &c
	}
	for _, w := range want {
		h := byName[strings.ToLower(w.Name)]
		if h == nil {
			if w.Required {
				return nil, false
			}
			c := *w
			out = append(out, &c)
			*added = append(*added, prefix+w.Name)
			continue
		}
		if w.Type == bigquery.RecordFieldType {
			sub, ok := mergeColumns(prefix+w.Name+".", h.Schema, w.Schema, added)
			if !ok {
				return nil, false
			}
			h.Schema = sub
		}
	}
	return out, true
}

// tableDiff compares the parts of a table the loader and the queries rely on: the schema,
// the partitioning column and the clustering. Expiration and descriptions are the owner's.
func tableDiff(have, want *bigquery.TableMetadata) []string {
	out := schemaDiff(have.Schema, want.Schema)
	field := ""
	if have.TimePartitioning != nil {
		field = have.TimePartitioning.Field
	}
	if field != want.TimePartitioning.Field {
		out = append(out, fmt.Sprintf("partitioned on %q, want %q", field, want.TimePartitioning.Field))
	}
	var cl []string
	if have.Clustering != nil {
		cl = have.Clustering.Fields
	}
	if !slices.Equal(cl, want.Clustering.Fields) {
		out = append(out, fmt.Sprintf("clustered by %v, want %v", cl, want.Clustering.Fields))
	}
	return out
}

func setupTopic(ctx context.Context, ps *pubsub.Client, project, topic string, rep *Report) error {
	name := topicName(project, topic)
	_, err := ps.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name})
	if err == nil {
		rep.Existing = append(rep.Existing, "topic "+name)
		return nil
	}
	if status.Code(err) != codes.NotFound {
		return fmt.Errorf("bigquery setup: get topic %s: %w", name, err)
	}
	_, err = ps.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: name})
	switch status.Code(err) {
	case codes.OK:
		rep.Created = append(rep.Created, "topic "+name)
	case codes.AlreadyExists:
		rep.Existing = append(rep.Existing, "topic "+name)
	default:
		return fmt.Errorf("bigquery setup: create topic %s: %w", name, err)
	}
	return nil
}

func wantSubscription(o SetupOptions) *pubsubpb.Subscription {
	s := &pubsubpb.Subscription{
		Name:               subName(o.Project, o.Subscription),
		Topic:              topicName(o.Project, o.Topic),
		AckDeadlineSeconds: int32(DefaultAckDeadline / time.Second),
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{
			DeadLetterTopic:     topicName(o.Project, o.DeadLetterTopic),
			MaxDeliveryAttempts: int32(o.MaxDeliveryAttempts),
		},
	}
	if o.SubscriptionType == SubscriptionBigQuery {
		s.BigqueryConfig = &pubsubpb.BigQueryConfig{
			Table:             o.Project + "." + o.Dataset + "." + o.Table,
			UseTableSchema:    true,
			DropUnknownFields: true,
		}
		s.MessageTransforms = []*pubsubpb.MessageTransform{envelopeTransform()}
	}
	return s
}

func setupSubscription(ctx context.Context, ps *pubsub.Client, want *pubsubpb.Subscription, rep *Report) error {
	have, err := ps.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: want.Name})
	if err == nil {
		rep.Existing = append(rep.Existing, "subscription "+want.Name)
		for _, d := range subscriptionDiff(have, want) {
			rep.Drift = append(rep.Drift, "subscription "+want.Name+": "+d)
		}
		return nil
	}
	if status.Code(err) != codes.NotFound {
		return fmt.Errorf("bigquery setup: get subscription %s: %w", want.Name, err)
	}
	_, err = ps.SubscriptionAdminClient.CreateSubscription(ctx, want)
	switch status.Code(err) {
	case codes.OK:
		rep.Created = append(rep.Created, "subscription "+want.Name)
	case codes.AlreadyExists:
		rep.Existing = append(rep.Existing, "subscription "+want.Name)
	default:
		return fmt.Errorf("bigquery setup: create subscription %s: %w", want.Name, err)
	}
	return nil
}

func subscriptionDiff(have, want *pubsubpb.Subscription) []string {
	var out []string
	if have.GetTopic() != want.GetTopic() {
		out = append(out, fmt.Sprintf("topic %s, want %s", have.GetTopic(), want.GetTopic()))
	}
	hb, wb := have.GetBigqueryConfig(), want.GetBigqueryConfig()
	switch {
	case wb == nil && hb != nil:
		out = append(out, "is a BigQuery subscription, want a pull subscription")
	case wb != nil && hb == nil:
		out = append(out, "is not a BigQuery subscription")
	case wb != nil:
		if hb.GetTable() != wb.GetTable() {
			out = append(out, fmt.Sprintf("writes table %s, want %s", hb.GetTable(), wb.GetTable()))
		}
		if !hb.GetUseTableSchema() {
			out = append(out, "use_table_schema is off")
		}
	}
	if wd := want.GetDeadLetterPolicy(); wd != nil && have.GetDeadLetterPolicy().GetDeadLetterTopic() != wd.GetDeadLetterTopic() {
		out = append(out, fmt.Sprintf("dead-letter topic %q, want %q",
			have.GetDeadLetterPolicy().GetDeadLetterTopic(), wd.GetDeadLetterTopic()))
	}
	return out
}

func topicName(project, topic string) string { return "projects/" + project + "/topics/" + topic }
func subName(project, sub string) string     { return "projects/" + project + "/subscriptions/" + sub }

func isHTTP(err error, code int) bool {
	var e *googleapi.Error
	return errors.As(err, &e) && e.Code == code
}
