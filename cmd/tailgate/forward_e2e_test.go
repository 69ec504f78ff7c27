package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tailgate-dev/tailgate/internal/freeport"
)

// forwardAgent is a tailgate subprocess with a forward input on TCP and a unix socket, a disk
// buffer synced every 200ms and a file sink. Restarting it reuses the data dir and the port.
type forwardAgent struct {
	agentProc
	dir    string
	out    string
	port   int
	socket string
}

func newForwardAgent(t *testing.T) *forwardAgent {
	t.Helper()
	dir := t.TempDir()
	a := &forwardAgent{
		dir:    dir,
		out:    filepath.Join(dir, "out.jsonl"),
		port:   freePort(t),
		socket: filepath.Join(dir, "forward.sock"),
	}
	cfg := fmt.Sprintf(`node_name: fwd
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: ""}
buffer: {sync: 200ms}
kubernetes: {enabled: false}
inputs:
  - {name: apps, type: forward, listen: "127.0.0.1:%d", socket: %s}
sinks:
  - {name: local, type: file, path: %s}
`, dir, a.port, a.socket, a.out)
	a.agentProc = newAgentProc(t, dir, cfg)
	a.listens = [][2]string{{"tcp", "127.0.0.1:" + strconv.Itoa(a.port)}, {"unix", a.socket}}
	return a
}

// freePort is a loopback port for an agent the test starts and restarts: outside the
// ephemeral range, so no outgoing connection takes it in between.
func freePort(t *testing.T) int {
	t.Helper()
	ps, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// start runs the agent (startAgent kills it in t.Cleanup if the test fails) and waits until
// both listeners accept.
// client is a real fluent-logger-golang client pointed at the agent.
func (a *forwardAgent) client(cfg fluent.Config, unix bool) *fluent.Fluent {
	a.t.Helper()
	if unix {
		cfg.FluentNetwork, cfg.FluentSocketPath = "unix", a.socket
	} else {
		cfg.FluentHost, cfg.FluentPort = "127.0.0.1", a.port
	}
	cfg.Timeout = 5 * time.Second
	cfg.MaxRetry = 3
	cfg.RetryWait = 20
	f, err := fluent.New(cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	return f
}

// forwardEnvelope is the DESIGN.md envelope as a forward record fills it.
type forwardEnvelope struct {
	ID         string         `json:"id"`
	Time       string         `json:"time"`
	Stream     string         `json:"stream"`
	Message    string         `json:"message"`
	Source     string         `json:"source"`
	Tag        string         `json:"tag"`
	Kubernetes map[string]any `json:"kubernetes"`
	Fields     map[string]any `json:"fields"`
}

// readForwardOut parses every complete line of the file sink's output.
func readForwardOut(t *testing.T, path string) []forwardEnvelope {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var envs []forwardEnvelope
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return envs // a line without its newline is still being written
		}
		if err != nil {
			t.Fatal(err)
		}
		var e forwardEnvelope
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("bad output line %q: %v", line, err)
		}
		envs = append(envs, e)
	}
}

// recordKey names a record by the "client" and "seq" fields every test record carries.
func recordKey(fields map[string]any) string {
	return fmt.Sprintf("%v/%v", fields["client"], fields["seq"])
}

// waitForward polls the output until every key in want is there, and returns the envelopes
// by key (with how many times each key arrived).
func waitForward(t *testing.T, out string, want []string, timeout time.Duration) (map[string]forwardEnvelope, map[string]int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		byKey := map[string]forwardEnvelope{}
		count := map[string]int{}
		for _, e := range readForwardOut(t, out) {
			k := recordKey(e.Fields)
			byKey[k] = e
			count[k]++
		}
		missing := ""
		for _, k := range want {
			if count[k] == 0 {
				missing = k
				break
			}
		}
		if missing == "" {
			return byKey, count
		}
		if time.Now().After(deadline) {
			t.Fatalf("record %s (of %d) never delivered to %s", missing, len(want), out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestForwardEndToEnd sends with the real fluent-logger-golang client, over TCP and the unix
// socket, with acks, to the agent binary, and checks each record's envelope in the file sink.
func TestForwardEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	a := newForwardAgent(t)
	a.start()

	base := time.Date(2026, 11, 23, 3, 0, 0, 123456789, time.UTC)
	clients := []struct {
		name    string
		cfg     fluent.Config
		unix    bool
		seconds bool // the client sends whole seconds only
	}{
		{name: "tcp-sync", cfg: fluent.Config{RequestAck: true, SubSecondPrecision: true}},
		{name: "unix-sync", cfg: fluent.Config{RequestAck: true, SubSecondPrecision: true}, unix: true},
		{name: "tcp-json", cfg: fluent.Config{RequestAck: true, MarshalAsJSON: true}, seconds: true},
		{name: "unix-async", cfg: fluent.Config{RequestAck: true, SubSecondPrecision: true, Async: true}, unix: true},
	}
	const n = 12
	type sent struct {
		tag    string
		time   time.Time
		record map[string]any
	}
	want := map[string]sent{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for ci, c := range clients {
		f := a.client(c.cfg, c.unix)
		wg.Go(func() {
			defer f.Close()
			for i := range n {
				rec := map[string]any{
					"client": c.name,
					"seq":    i,
					"level":  "info",
					"nested": map[string]any{"ok": true, "list": []any{1, "two", 3.5}},
				}
				// The message comes from "message", "log" or "msg"; a record without them has none.
				if key := [...]string{"message", "log", "msg", ""}[i%4]; key != "" {
					rec[key] = fmt.Sprintf("%s says %d", c.name, i)
				}
				tm := base.Add(time.Duration(ci)*time.Hour + time.Duration(i)*1001*time.Millisecond + time.Duration(i))
				tag := "app." + c.name
				if err := f.PostWithTime(tag, tm, rec); err != nil {
					t.Errorf("%s: post %d: %v", c.name, i, err)
					return
				}
				mu.Lock()
				want[recordKey(map[string]any{"client": c.name, "seq": i})] = sent{tag, tm, rec}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	got, count := waitForward(t, a.out, keys, 20*time.Second)
	a.stop()

	seconds := map[string]bool{}
	for _, c := range clients {
		seconds[c.name] = c.seconds
	}
	ids := map[string]bool{}
	for k, s := range want {
		e := got[k]
		if count[k] != 1 {
			t.Errorf("%s: delivered %d times, want once", k, count[k])
		}
		client := s.record["client"].(string)
		wantMsg := ""
		for _, key := range []string{"message", "log", "msg"} {
			if m, ok := s.record[key].(string); ok {
				wantMsg = m
			}
		}
		tm := s.time
		if seconds[client] {
			tm = tm.Truncate(time.Second)
		}
		if e.Stream != "app" || e.Tag != s.tag || e.Source != "apps" || e.Message != wantMsg {
			t.Errorf("%s: stream %q tag %q source %q message %q, want app %q apps %q", k, e.Stream, e.Tag, e.Source, e.Message, s.tag, wantMsg)
		}
		if gotTime, err := time.Parse(time.RFC3339Nano, e.Time); err != nil || !gotTime.Equal(tm) {
			t.Errorf("%s: time %s, want %s (%v)", k, e.Time, tm.Format(time.RFC3339Nano), err)
		}
		if wantFields := jsonRoundTrip(t, s.record); !reflect.DeepEqual(e.Fields, wantFields) {
			t.Errorf("%s: fields\n%v\nwant\n%v", k, e.Fields, wantFields)
		}
		if e.ID == "" || ids[e.ID] {
			t.Errorf("%s: id %q empty or repeated", k, e.ID)
		}
		ids[e.ID] = true
	}
	if extra := len(readForwardOut(t, a.out)) - len(want); extra != 0 {
		t.Errorf("%d records in the output beyond the %d sent", extra, len(want))
	}
}

// jsonRoundTrip is v as it reads back from JSON (numbers become float64).
func jsonRoundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestForwardKillAfterAck sends records with acks from sync clients (Post returns only after
// the ack), SIGKILLs the agent right after the last ack, restarts it, and requires every
// acknowledged record in the output: duplicates are allowed, loss is not.
func TestForwardKillAfterAck(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	a := newForwardAgent(t)
	var acked []string
	notYetOut := 0 // acknowledged records the sink had not written at the kill
	for cycle, n := range []int{1, 9, 40, 120} {
		a.start()
		if len(acked) > 0 {
			// What was acknowledged before the last kill comes back after the restart.
			waitForward(t, a.out, acked, 20*time.Second)
		}
		const clients = 4
		var mu sync.Mutex
		var wg sync.WaitGroup
		for c := range clients {
			name := fmt.Sprintf("cycle%d-client%d", cycle, c)
			f := a.client(fluent.Config{RequestAck: true, SubSecondPrecision: true, MarshalAsJSON: c == 3}, c%2 == 1)
			wg.Go(func() {
				defer f.Close()
				for i := c; i < n; i += clients {
					rec := map[string]any{"client": name, "seq": i, "message": "acked before the kill"}
					if err := f.Post("app.crash", rec); err != nil {
						t.Errorf("%s: post %d: %v", name, i, err)
						return
					}
					mu.Lock()
					acked = append(acked, recordKey(map[string]any{"client": name, "seq": i}))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		a.kill() // right after the last ack: the sink may not have written any of it yet
		if t.Failed() {
			return
		}
		out := map[string]bool{}
		for _, e := range readForwardOut(t, a.out) {
			out[recordKey(e.Fields)] = true
		}
		for _, k := range acked {
			if !out[k] {
				notYetOut++
			}
		}
	}
	a.start()
	_, count := waitForward(t, a.out, acked, 20*time.Second)
	a.stop()
	dups := 0
	for _, k := range acked {
		dups += count[k] - 1
	}
	t.Logf("%d acknowledged records over 4 kills, all delivered; %d were only in the buffer at a kill; %d duplicates", len(acked), notYetOut, dups)
}
