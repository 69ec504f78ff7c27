package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/tailgate-dev/tailgate/sinks/cloudwatch/cwfake"
)

// cwEvent is one log event as CloudWatch must hold it.
type cwEvent struct {
	group, stream, message string
	ms                     int64
}

// writeCWTree writes a CRI pod log tree of three pods (dir/pods/..., linked from
// dir/containers/) with n lines each: ASCII, multi-byte, JSON and long lines, stamped over the
// last hour, and one line of 2.5 MB. It returns the events CloudWatch must end up with for log_group
// "/k8s/{namespace}" and log_stream "{pod}/{container}".
func writeCWTree(t *testing.T, dir string, n int) []cwEvent {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
	base := time.Now().Add(-time.Hour).UTC()
	var want []cwEvent
	for p, pod := range []struct{ ns, name, container string }{
		{"shop", "cart-1", "app"}, {"shop", "cart-2", "app"}, {"payments", "ledger-0", "db"},
	} {
		podDir := filepath.Join(dir, "pods", pod.ns+"_"+pod.name+"_uid-"+strconv.Itoa(p), pod.container)
		os.MkdirAll(podDir, 0o755)
		var b strings.Builder
		for i := range n {
			var m string
			switch i % 5 {
			case 0:
				m = fmt.Sprintf("%s line %d Grüße 日本語", pod.name, i)
			case 1:
				m = fmt.Sprintf(`{"level":"info","pod":%q,"i":%d,"msg":"a \"quoted\" word"}`, pod.name, i)
			case 2:
				m = fmt.Sprintf("%s line %d %s", pod.name, i, strings.Repeat("x", 2000+i%7*10_000))
			default:
				m = fmt.Sprintf("%s line %d", pod.name, i)
			}
			at := base.Add(time.Duration(i) * time.Millisecond * 300)
			stream := "stdout"
			if i%7 == 0 {
				stream = "stderr"
			}
			fmt.Fprintf(&b, "%s %s F %s\n", at.Format(time.RFC3339Nano), stream, m)
			want = append(want, cwEvent{"/k8s/" + pod.ns, pod.name + "/" + pod.container, m, at.UnixMilli()})
		}
		if p == 0 {
			// A 2.5 MB line: over the 1 MiB event limit, the pipeline splits it into ordered
			// parts of at most 1,048,550 bytes (+ 26 = the limit), one event each.
			at := base.Add(time.Duration(n) * time.Millisecond * 300)
			long := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!", 40_000)[:2_500_000]
			fmt.Fprintf(&b, "%s stdout F %s\n", at.Format(time.RFC3339Nano), long)
			for _, part := range []string{long[:1_048_550], long[1_048_550:2_097_100], long[2_097_100:]} {
				want = append(want, cwEvent{"/k8s/" + pod.ns, pod.name + "/" + pod.container, part, at.UnixMilli()})
			}
		}
		if err := os.WriteFile(filepath.Join(podDir, "0.log"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "containers", pod.name+"_"+pod.ns+"_"+pod.container+"-"+strings.Repeat(strconv.Itoa(p), 64)+".log")
		if err := os.Symlink(filepath.Join(podDir, "0.log"), link); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// cwAgentConfig is an agent tailing dir's tree into one cloudwatch sink at endpoint.
func cwAgentConfig(dir, metrics, endpoint string, insecure bool) string {
	return fmt.Sprintf(`node_name: cw-node
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: "%s"}
buffer: {sync: 50ms}
kubernetes: {enabled: false}
inputs:
  - {name: pods, type: tail, paths: ["%s/containers/*.log"], poll_interval: 20ms, max_line_bytes: 4MiB}
sinks:
  - name: cw
    type: cloudwatch
    region: us-east-1
    endpoint: "%s"
    insecure: %v
    log_group: "/k8s/{namespace}"
    log_stream: "{pod}/{container}"
    batch_delay: 200ms
    retention_days: 7
`, dir, metrics, dir, endpoint, insecure)
}

// checkCWEvents compares what a server holds with want: the same events per stream, each once.
func checkCWEvents(t *testing.T, got, want []cwEvent) {
	t.Helper()
	order := func(a, b cwEvent) int {
		return cmp.Or(strings.Compare(a.group, b.group), strings.Compare(a.stream, b.stream),
			cmp.Compare(a.ms, b.ms), strings.Compare(a.message, b.message))
	}
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	if len(got) != len(want) {
		t.Errorf("%d events stored, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("event %d: got %s/%s (%d, %.80q), want %s/%s (%d, %.80q)", i, got[i].group, got[i].stream,
				got[i].ms, got[i].message, want[i].group, want[i].stream, want[i].ms, want[i].message)
			return
		}
	}
}

// TestCloudWatchAgentThrottled runs the agent binary against the fake CloudWatch Logs server,
// which requires SigV4 signatures (the agent takes keys from the environment through the
// default chain) and throttles 10% of PutLogEvents: every line arrives exactly once.
func TestCloudWatchAgentThrottled(t *testing.T) {
	dir := t.TempDir()
	want := writeCWTree(t, dir, 600)
	fake := cwfake.New(cwfake.Options{RequireSignature: true, ThrottleRate: 0.1, Seed: 11, KeepMessages: true})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cwTestEnv(t, dir)
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	a := newAgentProc(t, dir, cwAgentConfig(dir, metrics, srv.URL, false))
	a.listens = [][2]string{{"tcp", metrics}}
	a.start()
	deadline := time.Now().Add(90 * time.Second)
	for fake.Stats().Events < len(want) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(a.logf.Name())
			t.Fatalf("%d of %d events after 90s; stats %+v\nagent log:\n%s", fake.Stats().Events, len(want), fake.Stats(), lastLines(log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := scrape(t, metrics)
	a.stop()

	var got []cwEvent
	for _, k := range fake.Streams() {
		g, s, _ := strings.Cut(k, "\x00")
		for _, e := range fake.Events(g, s) {
			got = append(got, cwEvent{g, s, e.Message, e.Timestamp})
		}
	}
	checkCWEvents(t, got, want)
	st := fake.Stats()
	if st.Errors["ThrottlingException"] == 0 {
		t.Errorf("no call was throttled: %v", st.Errors)
	}
	if st.Duplicates != 0 || st.Errors["InvalidParameterException"] != 0 {
		t.Errorf("duplicates %d, invalid requests %d", st.Duplicates, st.Errors["InvalidParameterException"])
	}
	if ret, _, _ := fake.Group("/k8s/shop"); ret != 7 {
		t.Errorf("retention of the created group = %d, want 7", ret)
	}
	if got := m[series("tailgate_sink_records_total", "sink", "cw", "result", "sent")]; got != float64(len(want)) {
		t.Errorf("tailgate_sink_records_total{result=sent} = %v, want %d", got, len(want))
	}
	if got := m[series("tailgate_cloudwatch_throttles_total", "sink", "cw")]; got != float64(st.Errors["ThrottlingException"]) {
		t.Errorf("tailgate_cloudwatch_throttles_total = %v, the server throttled %d", got, st.Errors["ThrottlingException"])
	}
	if got := m[series("tailgate_cloudwatch_events_total", "sink", "cw")]; got != float64(len(want)) {
		t.Errorf("tailgate_cloudwatch_events_total = %v, want %d", got, len(want))
	}
	t.Logf("server calls %v errors %v", st.Calls, st.Errors)
}

// motoServer starts `moto_server -H 127.0.0.1 -p PORT` (the AWS fake) and returns its URL, or
// skips the test loudly when it is not installed.
func motoServer(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("TAILGATE_MOTO_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("moto_server"); err != nil {
			t.Skip("!!! SKIPPED: moto_server is not installed (pip install 'moto[server]', or set TAILGATE_MOTO_SERVER): the CloudWatch Logs end-to-end test against moto did not run !!!")
		}
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	logf, err := os.Create(filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			if resp, err := http.Get(url + "/moto-api/"); err == nil {
				resp.Body.Close()
				return url
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("moto_server did not answer within 60s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cwTestEnv gives the agent subprocess keys through the environment (the default chain's
// first link), never a file, and keeps the chain off the instance metadata service.
func cwTestEnv(t *testing.T, dir string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTAILGATEE2E")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "e2e-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
}

// TestCloudWatchAgentMoto runs the agent binary against moto, an independent CloudWatch Logs
// implementation, and reads every stream back with GetLogEvents through the SDK. moto routes
// a request to a service by its SigV4 credential scope, so the agent signs (keys from the
// environment) instead of using insecure: true.
func TestCloudWatchAgentMoto(t *testing.T) {
	url := motoServer(t)
	dir := t.TempDir()
	cwTestEnv(t, dir)
	want := writeCWTree(t, dir, 300)
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	a := newAgentProc(t, dir, cwAgentConfig(dir, metrics, url, false))
	a.listens = [][2]string{{"tcp", metrics}}
	a.start()
	sent := series("tailgate_sink_records_total", "sink", "cw", "result", "sent")
	deadline := time.Now().Add(90 * time.Second)
	for scrape(t, metrics)[sent] < float64(len(want)) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(a.logf.Name())
			t.Fatalf("sent %v of %d after 90s\nagent log:\n%s", scrape(t, metrics)[sent], len(want), lastLines(log))
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.stop()

	client := cloudwatchlogs.New(cloudwatchlogs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTAILGATEE2E", "e2e-secret", ""),
	})
	ctx := context.Background()
	var got []cwEvent
	streams := map[string][]string{}
	for _, w := range want {
		if !slices.Contains(streams[w.group], w.stream) {
			streams[w.group] = append(streams[w.group], w.stream)
		}
	}
	for group, names := range streams {
		for _, stream := range names {
			var token *string
			for {
				out, err := client.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
					LogGroupName: aws.String(group), LogStreamName: aws.String(stream),
					StartFromHead: aws.Bool(true), NextToken: token,
				})
				if err != nil {
					t.Fatalf("GetLogEvents %s %s: %v", group, stream, err)
				}
				for _, e := range out.Events {
					got = append(got, cwEvent{group, stream, aws.ToString(e.Message), aws.ToInt64(e.Timestamp)})
				}
				if len(out.Events) == 0 || aws.ToString(out.NextForwardToken) == aws.ToString(token) {
					break
				}
				token = out.NextForwardToken
			}
		}
	}
	checkCWEvents(t, got, want)
	ret, err := client.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/k8s/shop")})
	if err != nil || len(ret.LogGroups) != 1 || aws.ToInt32(ret.LogGroups[0].RetentionInDays) != 7 {
		t.Errorf("DescribeLogGroups = %+v, %v; want /k8s/shop with retention 7", ret, err)
	}
}

// lastLines returns the last 4 KiB of a log, for failure messages.
func lastLines(b []byte) string {
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// TestCheckCloudWatchSink: `tailgate check` runs the sink's own checks (templates, formats,
// limits) without contacting AWS.
func TestCheckCloudWatchSink(t *testing.T) {
	dir := t.TempDir()
	write := func(sink string) string {
		p := filepath.Join(dir, "tailgate.yaml")
		cfg := fmt.Sprintf("data_dir: %s\nkubernetes: {enabled: false}\ninputs:\n  - {name: pods, type: tail, paths: [\"%s/*.log\"]}\nsinks:\n  - %s\n", dir, dir, sink)
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write(`{name: cw, type: cloudwatch, region: eu-west-1, log_group: "/k8s/{namespace}", log_stream: "{pod}/{labels.app|none}", retention_days: 30, message_format: envelope, oversize: truncate}`)
	if code, out, errOut := runCLI(t, "check", "--config", ok); code != 0 {
		t.Errorf("check of a good cloudwatch sink: exit %d\n%s%s", code, out, errOut)
	}
	for _, tc := range []struct{ sink, want string }{
		{`{name: cw, type: cloudwatch, region: eu-west-1, log_group: "/k8s/{nope}", log_stream: "{pod}"}`, "unknown placeholder {nope}"},
		{`{name: cw, type: cloudwatch, region: eu-west-1, log_group: "/k8s", log_stream: "{pod}", retention_days: 8}`, "retention_days 8"},
		{`{name: cw, type: cloudwatch, region: eu-west-1, log_group: "/k8s", log_stream: "{pod}", message_format: raw}`, "message_format"},
		{`{name: cw, type: cloudwatch, region: eu-west-1, log_group: "/k8s", log_stream: "{pod}", max_event_bytes: 2MiB}`, "max_event_bytes"},
	} {
		code, out, errOut := runCLI(t, "check", "--config", write(tc.sink))
		if code == 0 || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("check of %s: exit %d, output %q; want an error naming %q", tc.sink, code, out+errOut, tc.want)
		}
	}
}
