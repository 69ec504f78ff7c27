//go:build !race

package emulatortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The audit subscription is a second pull subscription on the records topic that only the
// test reads, after the run: it holds every message the agent published, so a record missing
// from BigQuery can be placed on one side of Pub/Sub or the other.

func auditSubscription(topic string) string { return topic + "-audit" }

func createAuditSubscription(ctx context.Context, ps *pubsub.Client, topic string) error {
	_, err := ps.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name:  "projects/" + project + "/subscriptions/" + auditSubscription(topic),
		Topic: "projects/" + project + "/topics/" + topic,
		// Longer than the test reads it: nothing is redelivered while it is drained.
		AckDeadlineSeconds: 600,
	})
	if err != nil {
		return fmt.Errorf("create audit subscription: %w", err)
	}
	return nil
}

// pulled is one message read back from a subscription.
type pulled struct {
	messageID   string
	publishTime time.Time
	id          string // the envelope's id
	message     string // the envelope's message
	attempt     int32  // delivery attempt, where the subscription counts them
}

// drain pulls and acks sub until two pulls in a row bring nothing.
func drain(ctx context.Context, ps *pubsub.Client, sub string) ([]pulled, error) {
	name := "projects/" + project + "/subscriptions/" + sub
	var out []pulled
	for empty := 0; empty < 2; {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := ps.SubscriptionAdminClient.Pull(pctx, &pb.PullRequest{Subscription: name, MaxMessages: 1000})
		cancel()
		switch {
		case status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
			empty++
			continue
		case err != nil:
			return out, fmt.Errorf("pull %s: %w", sub, err)
		case len(resp.ReceivedMessages) == 0:
			empty++
			continue
		}
		empty = 0
		acks := make([]string, 0, len(resp.ReceivedMessages))
		for _, rm := range resp.ReceivedMessages {
			acks = append(acks, rm.AckId)
			var env struct{ ID, Message string }
			json.Unmarshal(rm.Message.Data, &env) // a message that is not an envelope keeps them empty
			out = append(out, pulled{messageID: rm.Message.MessageId, publishTime: rm.Message.PublishTime.AsTime(),
				id: env.ID, message: env.Message, attempt: rm.DeliveryAttempt})
		}
		if err := ps.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: name, AckIds: acks}); err != nil {
			return out, fmt.Errorf("ack %s: %w", sub, err)
		}
	}
	return out, nil
}

// auditPublished logs how many messages the agent published and how many of them were
// duplicates, and returns the published messages by message text.
func (c *fullChain) auditPublished(ctx context.Context) map[string][]pulled {
	c.t.Helper()
	msgs, err := drain(ctx, c.ps, auditSubscription(c.topic))
	if err != nil {
		c.t.Errorf("audit: %v", err)
	}
	byMessage := map[string][]pulled{}
	for _, m := range msgs {
		byMessage[m.message] = append(byMessage[m.message], m)
	}
	c.t.Logf("audit subscription: the agent published %d messages for %d records (%d duplicates from the agent's replay after its kill)",
		len(msgs), len(byMessage), len(msgs)-len(byMessage))
	return byMessage
}

// diagnoseMissing places each missing record: never published (lost before Pub/Sub: the
// agent), or published (lost after: Pub/Sub or the loader), and then whether the loader's
// subscription still gives it out once the loader is stopped.
func (c *fullChain) diagnoseMissing(ctx context.Context, missing []string, published map[string][]pulled) {
	c.t.Helper()
	var state []string
	for _, m := range [][]string{
		{"tailgate_loader_messages_held"}, {"tailgate_loader_appends_in_flight"},
		{"tailgate_loader_rows_total", "result", "appended"}, {"tailgate_loader_rows_total", "result", "nacked"},
		{"tailgate_loader_rows_total", "result", "dead_letter"},
	} {
		v, err := metric(c.loaderMetrics, m[0], m[1:]...)
		state = append(state, fmt.Sprintf("%v=%v (%v)", m, v, err))
	}
	c.t.Logf("loader before its stop: %v", state)
	stopped := time.Now()
	if err := c.loader.stop(); err != nil {
		c.t.Logf("loader exited with %v after SIGTERM", err)
	}
	pending := map[string]pulled{}
	for time.Since(stopped) < 75*time.Second {
		left, err := drain(ctx, c.ps, c.sub)
		if err != nil {
			c.t.Errorf("diagnose: %v", err)
		}
		for _, m := range left {
			pending[m.message] = m
		}
		c.t.Logf("%v after the loader's stop: %d messages pulled from %s", time.Since(stopped).Round(time.Second), len(left), c.sub)
	}
	var notPublished, stillPending, gone []string
	for _, msg := range missing {
		switch {
		case len(published[msg]) == 0:
			notPublished = append(notPublished, msg)
		case pending[msg].messageID != "":
			stillPending = append(stillPending, msg)
		default:
			gone = append(gone, msg)
		}
	}
	c.t.Errorf("of %d missing records: %d never published by the agent; %d published and still in subscription %s "+
		"(pullable once the loader stopped: never delivered again to the restarted loader); %d published and no longer in the subscription "+
		"(acked without a row, or held by a dead stream's lease)", len(missing), len(notPublished), len(stillPending), c.sub, len(gone))
	show := func(what string, msgs []string) {
		slices.Sort(msgs)
		for _, msg := range msgs[:min(10, len(msgs))] {
			var detail []string
			for _, p := range published[msg] {
				detail = append(detail, fmt.Sprintf("message %s id %s published %s", p.messageID, p.id, p.publishTime.Format(time.RFC3339Nano)))
			}
			if p, ok := pending[msg]; ok {
				detail = append(detail, fmt.Sprintf("pending, delivery attempt %d", p.attempt))
			}
			c.t.Logf("  %s: %.40q %v", what, msg, detail)
		}
	}
	show("not published", notPublished)
	show("still pending", stillPending)
	show("gone", gone)
}
