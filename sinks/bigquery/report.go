package bigquery

import (
	"fmt"
	"io"
	"strings"
)

// Report is what Setup found and did.
type Report struct {
	Created  []string // "table p.d.t", "topic projects/p/topics/t", ...
	Existing []string // left as they were
	Updated  []string // existing pieces changed additively: "table p.d.t: added columns x, y"
	Drift    []string // how existing pieces differ from what Setup would create
	Skipped  []string // pieces not created, with the reason
	Roles    []Role   // IAM roles each principal needs for the path to work

	opts SetupOptions
}

// Role is one IAM grant the path needs.
type Role struct {
	Principal string // who: a description, since Setup does not know service account names
	Role      string // roles/...
	Resource  string // on what
	Why       string
}

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	section := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s:\n", title)
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	section("created", r.Created)
	section("existing", r.Existing)
	section("updated (additive: new NULLABLE columns)", r.Updated)
	section("DRIFT (not changed; fix by hand or use another table)", r.Drift)
	section("skipped", r.Skipped)
	if len(r.Roles) > 0 {
		b.WriteString("IAM roles needed:\n")
		for _, ro := range r.Roles {
			fmt.Fprintf(&b, "  %s: %s on %s (%s)\n", ro.Principal, ro.Role, ro.Resource, ro.Why)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// roles lists the grants for the pieces of o. The Pub/Sub service agent is
// service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com.
func roles(o SetupOptions) []Role {
	table := o.Project + "." + o.Dataset + "." + o.Table
	topic := topicName(o.Project, o.Topic)
	dl := topicName(o.Project, o.DeadLetterTopic)
	sub := subName(o.Project, o.Subscription)
	const agent = "Pub/Sub service agent"
	rs := []Role{
		{"whoever runs setup", "roles/bigquery.dataEditor", "dataset " + o.Project + "." + o.Dataset + " (roles/bigquery.user on the project to create the dataset)", "create the table"},
		{"whoever runs setup", "roles/pubsub.editor", "project " + o.Project, "create topics and subscriptions"},
		{"tailgate agents (pubsub sink)", "roles/pubsub.publisher", "topic " + topic, "publish records"},
		{agent, "roles/pubsub.publisher", "topic " + dl, "forward messages past max delivery attempts"},
		{agent, "roles/pubsub.subscriber", "subscription " + sub, "dead-letter policy acks the forwarded messages"},
	}
	if o.SubscriptionType == SubscriptionBigQuery {
		rs = append(rs,
			Role{agent, "roles/bigquery.dataEditor", "table " + table, "BigQuery subscription writes rows"},
			Role{agent, "roles/bigquery.metadataViewer", "table " + table, "BigQuery subscription reads the table schema"})
	} else {
		rs = append(rs,
			Role{"tailgate bigquery load", "roles/pubsub.subscriber", "subscription " + sub, "pull and ack messages"},
			Role{"tailgate bigquery load", "roles/pubsub.publisher", "topic " + dl, "dead-letter malformed messages and rejected rows"},
			Role{"tailgate bigquery load", "roles/bigquery.dataEditor", "table " + table, "Storage Write API appends (bigquery.tables.updateData)"})
	}
	return rs
}
