package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/fluent/fluent-logger-golang/fluent"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tailgate-dev/tailgate/sinks/pubsub/pubsubemu"
)

const pubsubTestProject = "test-project"

// pubsubAdmin is a v2 client on the emulator, for the admin and pull calls.
func pubsubAdmin(t *testing.T, addr string) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), pubsubTestProject, option.WithEndpoint(addr),
		option.WithoutAuthentication(), option.WithTelemetryDisabled(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pubsubAgent is a tailgate subprocess tailing a CRI pod log tree and listening for forward
// records, with one pubsub sink on the emulator. Restarts reuse the data dir and the ports.
type pubsubAgent struct {
	agentProc
	fwdPort int
	metrics string
}

func newPubSubAgent(t *testing.T, dir, emulator, topic string) *pubsubAgent {
	t.Helper()
	a := &pubsubAgent{
		fwdPort: freePort(t),
		metrics: "127.0.0.1:" + strconv.Itoa(freePort(t)),
	}
	cfg := fmt.Sprintf(`node_name: ps-node
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: "%s"}
buffer: {sync: 50ms}
kubernetes: {enabled: false}
inputs:
  - {name: pods, type: tail, paths: ["%s/containers/*.log"], poll_interval: 20ms, parse_json: true}
  - {name: apps, type: forward, listen: "127.0.0.1:%d"}
sinks:
  - {name: ps, type: pubsub, project: %s, topic: %s, endpoint: "%s", insecure: true}
`, dir, a.metrics, dir, a.fwdPort, pubsubTestProject, topic, emulator)
	a.agentProc = newAgentProc(t, dir, cfg)
	a.listens = [][2]string{{"tcp", "127.0.0.1:" + strconv.Itoa(a.fwdPort)}, {"tcp", a.metrics}}
	return a
}

// start runs the agent and waits until its forward and metrics listeners accept.
// pubsubSender posts numbered forward records with a real fluent-logger-golang client, acks
// on, until stopped. The client retries a chunk (same chunk id) across an agent restart, so
// a record acknowledged or not keeps one identity; keys lists the records Post returned for.
type pubsubSender struct {
	name string
	mu   sync.Mutex
	keys []string
}

func (s *pubsubSender) run(t *testing.T, port int, cfg fluent.Config, stop <-chan struct{}) {
	cfg.FluentHost, cfg.FluentPort = "127.0.0.1", port
	cfg.RequestAck = true
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 5 * time.Second
	// Enough reconnects (every 20..250ms) to outlast an agent restart under -race.
	cfg.MaxRetry, cfg.RetryWait, cfg.MaxRetryWait = 120, 20, 250
	f, err := fluent.New(cfg)
	if err != nil {
		t.Errorf("%s: %v", s.name, err)
		return
	}
	defer f.Close()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		rec := map[string]any{"client": s.name, "seq": i, "message": fmt.Sprintf("%s record %d", s.name, i)}
		if err := f.Post("app."+s.name, rec); err != nil {
			t.Errorf("%s: post %d: %v", s.name, i, err)
			return
		}
		s.mu.Lock()
		s.keys = append(s.keys, recordKey(rec))
		s.mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a steady trickle, not a flood
	}
}

func (s *pubsubSender) acked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// pulledMessage is one Pub/Sub message as the subscription delivered it.
type pulledMessage struct {
	data  []byte
	attrs map[string]string
}

// pullAll pulls (and acks) until every key in want was seen or the deadline passes, then
// drains what else is there; key names a message's record.
func pullAll(t *testing.T, c *pubsub.Client, sub string, want []string, key func(pulledMessage) string, timeout time.Duration) []pulledMessage {
	t.Helper()
	seen := map[string]bool{}
	missing := func() []string {
		var m []string
		for _, k := range want {
			if !seen[k] {
				m = append(m, k)
			}
		}
		return m
	}
	var all []pulledMessage
	deadline := time.Now().Add(timeout)
	emptyAfterAll := 0
	for emptyAfterAll < 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := c.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: 1000})
		cancel()
		var got []*pb.ReceivedMessage
		switch {
		case err == nil:
			got = resp.ReceivedMessages
		case status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		default:
			t.Fatalf("pull: %v", err)
		}
		acks := make([]string, 0, len(got))
		for _, rm := range got {
			acks = append(acks, rm.AckId)
			m := pulledMessage{data: rm.Message.Data, attrs: rm.Message.Attributes}
			all = append(all, m)
			seen[key(m)] = true
		}
		if len(acks) > 0 {
			if err := c.SubscriptionAdminClient.Acknowledge(context.Background(),
				&pb.AcknowledgeRequest{Subscription: sub, AckIds: acks}); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		if len(missing()) == 0 {
			if len(got) == 0 {
				emptyAfterAll++
			}
			continue
		}
		if time.Now().After(deadline) {
			m := missing()
			t.Fatalf("%d of %d records never arrived in %s, first %s", len(m), len(want), sub, m[0])
		}
	}
	return all
}

// pubsubEnvelope is the DESIGN.md envelope as it reads back from message data.
type pubsubEnvelope struct {
	ID         string `json:"id"`
	Time       string `json:"time"`
	Stream     string `json:"stream"`
	Message    string `json:"message"`
	Source     string `json:"source"`
	Tag        string `json:"tag"`
	Kubernetes struct {
		Namespace string            `json:"namespace"`
		Pod       string            `json:"pod"`
		PodUID    string            `json:"pod_uid"`
		Container string            `json:"container"`
		Node      string            `json:"node"`
		Labels    map[string]string `json:"labels"`
	} `json:"kubernetes"`
	Fields map[string]any `json:"fields"`
}

var envelopeKeys = []string{"fields", "id", "kubernetes", "message", "source", "stream", "tag", "time"}

// decodePubSubEnvelope parses a message's data strictly: exactly the envelope's keys.
func decodePubSubEnvelope(data []byte) (pubsubEnvelope, error) {
	var e pubsubEnvelope
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return e, err
	}
	if keys := slices.Sorted(maps.Keys(top)); !slices.Equal(keys, envelopeKeys) {
		return e, fmt.Errorf("envelope keys %v, want %v", keys, envelopeKeys)
	}
	err := json.Unmarshal(data, &e)
	return e, err
}

// pubsubRecordKey names the test record a message carries: "tail/<seq>" for a tail line (its
// message is the JSON the writer wrote) or "<client>/<seq>" for a forward record.
func pubsubRecordKey(m pulledMessage) string {
	e, err := decodePubSubEnvelope(m.data)
	if err != nil {
		return "undecodable"
	}
	if e.Source == "apps" {
		return recordKey(e.Fields)
	}
	var line struct{ Seq *int }
	if json.Unmarshal([]byte(e.Message), &line) != nil || line.Seq == nil {
		return "not-a-whole-line"
	}
	return "tail/" + strconv.Itoa(*line.Seq)
}

// TestPubSubEmulatorAgent runs the agent binary against the real Pub/Sub emulator.
func TestPubSubEmulatorAgent(t *testing.T) {
	addr := pubsubemu.Addr(t)
	admin := pubsubAdmin(t, addr)
	t.Run("KillReplayDedup", func(t *testing.T) { testPubSubKillReplay(t, addr, admin) })
	t.Run("MissingTopicDeadLettersReplayed", func(t *testing.T) { testPubSubMissingTopic(t, addr, admin) })
}

// testPubSubKillReplay tails CRI logs (with partial lines) of three containers and takes
// forward records from two clients, SIGKILLs the agent twice mid-run, and then checks the
// subscription: every record arrives as an envelope with matching attributes, and the same
// record always carries the same id, so deduplicating by id leaves exactly one per record.
func testPubSubKillReplay(t *testing.T, emulator string, admin *pubsub.Client) {
	id, sub := pubsubTopic(t, admin, "tailgate-e2e", false)

	dir := t.TempDir()
	a := newPubSubAgent(t, dir, emulator, id)
	w := newCrashWriter(t, dir, 3)
	w.log = a.logf

	senders := []*pubsubSender{{name: "fwd-msgpack"}, {name: "fwd-json"}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopSenders := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSenders()

	const kills = 2
	for cycle := 0; cycle <= kills; cycle++ {
		a.start()
		if cycle == 0 {
			w.write(20) // found by the first scan before any rotation
			for i, s := range senders {
				wg.Go(func() { s.run(t, a.fwdPort, fluent.Config{SubSecondPrecision: i == 0, MarshalAsJSON: i == 1}, stop) })
			}
		}
		if cycle == kills {
			break
		}
		// Kill only once each forward client has had records acknowledged by this run, so
		// that the kill lands among acks, Posts and publishes in flight.
		base := make([]int, len(senders))
		for i, s := range senders {
			base[i] = s.acked()
		}
		deadline := time.Now().Add(20 * time.Second)
		for step := 0; ; step++ {
			if step < 8 {
				w.write(40)
			}
			if step == 4 {
				w.renameRotate()
			}
			time.Sleep(15 * time.Millisecond)
			progressed := true
			for i, s := range senders {
				progressed = progressed && s.acked() >= base[i]+15
			}
			if step >= 8 && progressed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: forward clients acknowledged too little in 20s", cycle)
			}
		}
		a.kill() // forward clients are mid-Post; tail positions and sink cursors mid-flight
		fmt.Fprintf(a.logf, "TEST: cycle %d: agent killed at tail seq %d\n", cycle, w.seq)
		w.write(60) // written while the agent is down
	}
	w.write(30)
	stopSenders()
	if t.Failed() {
		return
	}

	var want []string
	for s := range w.seq {
		want = append(want, "tail/"+strconv.Itoa(s))
	}
	forwarded := 0
	for _, s := range senders {
		want = append(want, s.keys...)
		forwarded += len(s.keys)
	}
	msgs := pullAll(t, admin, sub, want, pubsubRecordKey, 30*time.Second)
	a.stop()

	dataByID := map[string]string{}
	idsByKey := map[string]map[string]bool{}
	for _, m := range msgs {
		e, err := decodePubSubEnvelope(m.data)
		if err != nil {
			t.Fatalf("message data is not the envelope: %v\n%s", err, m.data)
		}
		wantAttrs := map[string]string{"namespace": e.Kubernetes.Namespace, "pod": e.Kubernetes.Pod,
			"container": e.Kubernetes.Container, "stream": e.Stream, "source": e.Source, "id": e.ID}
		if !maps.Equal(m.attrs, wantAttrs) {
			t.Errorf("attributes %v do not match the envelope %s", m.attrs, m.data)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil || len(e.ID) != 32 {
			t.Errorf("bad time or id: %s", m.data)
		}
		k := pubsubRecordKey(m)
		switch e.Source {
		case "pods":
			ok := e.Stream == "stdout" && e.Tag == "" && e.Kubernetes.Namespace == "ns" &&
				e.Kubernetes.Container == "app" && e.Kubernetes.Node == "ps-node" &&
				e.Kubernetes.Pod != "" && e.Kubernetes.PodUID != "" && e.Fields["seq"] != nil
			if !ok {
				t.Errorf("tail record %s: incomplete envelope %s", k, m.data)
			}
		case "apps":
			client, _ := e.Fields["client"].(string)
			if e.Stream != "app" || e.Tag != "app."+client || e.Message != fmt.Sprintf("%s record %v", client, e.Fields["seq"]) {
				t.Errorf("forward record %s: envelope %s", k, m.data)
			}
		default:
			t.Errorf("unknown source in %s", m.data)
		}
		if prev, ok := dataByID[e.ID]; ok && prev != string(m.data) {
			t.Errorf("id %s carries two different records:\n%s\n%s", e.ID, prev, m.data)
		}
		dataByID[e.ID] = string(m.data)
		if idsByKey[k] == nil {
			idsByKey[k] = map[string]bool{}
		}
		idsByKey[k][e.ID] = true
	}
	wanted := map[string]bool{}
	for _, k := range want {
		wanted[k] = true
	}
	for k, ids := range idsByKey {
		if !wanted[k] {
			t.Errorf("unexpected record %s", k)
		}
		if len(ids) != 1 {
			t.Errorf("record %s arrived under %d ids %v: dedup by id would keep it %d times",
				k, len(ids), slices.Sorted(maps.Keys(ids)), len(ids))
		}
	}
	if len(dataByID) != len(want) {
		t.Errorf("%d distinct ids for %d records", len(dataByID), len(want))
	}
	t.Logf("%d records (%d tail lines over %d rename rotations, %d forward), %d kills: %d messages, %d duplicates (all with the id of their first copy)",
		len(want), w.seq, w.renames, forwarded, kills, len(msgs), len(msgs)-len(dataByID))
}

// testPubSubMissingTopic publishes to a topic that does not exist: the emulator answers
// NotFound, a permanent error, so the records go to the dead-letter store and the dead_letter
// counter, and the agent keeps running and reading. Then the topic is created and
// `tailgate deadletter replay` (run while the agent is still up) delivers every dead letter
// exactly once and empties the store.
func testPubSubMissingTopic(t *testing.T, emulator string, admin *pubsub.Client) {
	dir := t.TempDir()
	id := fmt.Sprintf("never-created-%d", time.Now().UnixNano())
	a := newPubSubAgent(t, dir, emulator, id)
	w := newCrashWriter(t, dir, 2)
	a.start()
	defer a.stop()
	dead := series("tailgate_sink_records_total", "sink", "ps", "result", "dead_letter")
	sent := series("tailgate_sink_records_total", "sink", "ps", "result", "sent")
	waitDead := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			m := scrape(t, a.metrics)
			if m[dead] >= float64(n) {
				if m[sent] != 0 {
					t.Errorf("%s = %v with no topic", sent, m[sent])
				}
				return
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(a.logf.Name())
				t.Fatalf("%s = %v, want >= %d\nagent log:\n%s", dead, m[dead], n, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	w.write(30)
	waitDead(30)
	// Still running, still reading: more records follow the same path.
	w.write(25)
	waitDead(55)
	if err := a.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("agent is gone after dead-lettering: %v", err)
	}
	m := scrape(t, a.metrics)
	if got := m[series("tailgate_deadletter_records_total", "reason", "not_found", "sink", "ps")]; got != 55 {
		t.Errorf("tailgate_deadletter_records_total{reason=not_found} = %v, want 55", got)
	}
	cfg := filepath.Join(dir, "tailgate.yaml")
	code, out, errOut := runCLI(t, "deadletter", "list", "--sink", "ps", "--config", cfg)
	if code != 0 || !strings.Contains(out, "total not_found: 55 records") {
		t.Fatalf("deadletter list: code %d\n%s\n%s", code, out, errOut)
	}
	// buffer inspect counts them by sink and reason, read from the store while the agent runs.
	inspectDeadLetters(t, filepath.Join(dir, "data"), `  ps: 55 records not replayed, \d+ bytes on disk \(\d+ not replayed\), 0 corrupt regions, 0 dropped unreplayed when the store was full`,
		`    REASON +RECORDS +DROPPED +OLDEST +NEWEST`,
		`    not_found +55 +0 +\S+Z +\S+Z`)

	// The cause is fixed: the topic exists now, with a subscription to read it back.
	ctx := context.Background()
	topic := "projects/" + pubsubTestProject + "/topics/" + id
	sub := "projects/" + pubsubTestProject + "/subscriptions/" + id
	if _, err := admin.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(ctx,
		&pb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 60}); err != nil {
		t.Fatalf("create subscription: %v", err)
	}
	code, out, errOut = runCLI(t, "deadletter", "replay", "--sink", "ps", "--config", cfg, "--timeout", "1m")
	if code != 0 || !strings.Contains(out, "55 matched, 55 delivered, 0 failed again, 0 pending") {
		t.Fatalf("deadletter replay: code %d\n%s\n%s", code, out, errOut)
	}
	want := make([]string, 55)
	for i := range want {
		want[i] = "tail/" + strconv.Itoa(i)
	}
	got := pullAll(t, admin, sub, want, pubsubRecordKey, 30*time.Second)
	count := map[string]int{}
	for _, msg := range got {
		count[pubsubRecordKey(msg)]++
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("%s arrived %d times, want once", k, n)
		}
	}
	if len(count) != 55 {
		t.Errorf("%d distinct records arrived, want 55", len(count))
	}
	// Delivered dead letters are gone: a second replay has nothing to send.
	code, out, _ = runCLI(t, "deadletter", "list", "--sink", "ps", "--config", cfg)
	if code != 0 || !strings.Contains(out, "no dead letters for sink ps match") {
		t.Errorf("deadletter list after the replay: code %d\n%s", code, out)
	}
	inspectDeadLetters(t, filepath.Join(dir, "data"), `  ps: 0 records not replayed, \d+ bytes on disk \(0 not replayed\), 0 corrupt regions, 0 dropped unreplayed when the store was full`)
}

// inspectDeadLetters runs buffer inspect on dataDir and matches the lines after its "dead
// letters" heading against want, one regexp a line, exactly.
func inspectDeadLetters(t *testing.T, dataDir string, want ...string) {
	t.Helper()
	code, out, errOut := runCLI(t, "buffer", "inspect", "--data-dir", dataDir)
	_, dl, found := strings.Cut(out, "\ndead letters (")
	if code != 0 || !found {
		t.Fatalf("buffer inspect: code %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(dl), "\n")[1:]
	if len(lines) != len(want) {
		t.Fatalf("buffer inspect: %d dead-letter lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(strings.TrimRight(lines[i], " ")) {
			t.Errorf("buffer inspect dead letters, line %d: %q, want /%s/\n%s", i, lines[i], w, out)
		}
	}
}
