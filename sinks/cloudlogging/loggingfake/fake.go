// Package loggingfake is an in-process Cloud Logging API (google.logging.v2.LoggingServiceV2,
// WriteLogEntries only) built from Google's generated loggingpb types, for tests and
// benchmarks in any package. It enforces what the real API enforces that a sink could get
// wrong: the request and entry size limits, the log name format, the monitored resource's
// labels, timestamps more than a day ahead or past retention, label counts and sizes, and the
// partial_success semantics with a WriteLogEntriesPartialErrors detail. Hooks inject per-entry
// errors and whole-request failures, before or after the entries are written.
package loggingfake

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The API's limits (https://cloud.google.com/logging/quotas).
const (
	MaxRequestBytes  = 10 << 20  // 10 MB per WriteLogEntries request
	MaxEntryBytes    = 256 << 10 // 256 KB per entry
	MaxLabels        = 64
	MaxLabelKeyBytes = 512
	MaxLabelValue    = 64 << 10
	// MaxStructDepth is the JSON nesting the fake takes in a jsonPayload: Google's parsers
	// stop at 100 message levels, and each JSON level is two or three.
	MaxStructDepth = 32
)

// Server is a running fake.
type Server struct {
	loggingpb.UnimplementedLoggingServiceV2Server

	// Addr is the host:port it listens on (plaintext gRPC).
	Addr string

	// Set these before the first request.
	// Now is the server's clock (time.Now by default).
	Now func() time.Time
	// Retention is how old an entry may be (30 days by default, the _Default bucket's).
	Retention time.Duration
	// MaxEntries refuses a request with more entries (0: no limit).
	MaxEntries int

	srv *grpc.Server

	mu       sync.Mutex
	entries  []*loggingpb.LogEntry
	requests int
	// hooks, see SetRequestError and friends.
	before     func(*loggingpb.WriteLogEntriesRequest) error
	after      func(*loggingpb.WriteLogEntriesRequest) error
	entryError func(*loggingpb.LogEntry) *status.Status
	project    string
}

// SetProject makes p the only project written to: others get PERMISSION_DENIED ("" lifts it).
func (s *Server) SetProject(p string) {
	s.mu.Lock()
	s.project = p
	s.mu.Unlock()
}

// Start starts a fake on a loopback port; it stops at the end of the test.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Listen starts a fake on addr.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loggingfake: listen %s: %w", addr, err)
	}
	s := &Server{Addr: ln.Addr().String(), Now: time.Now, Retention: 30 * 24 * time.Hour}
	// Accept more than the API so the fake can answer an oversize request the way the API
	// does, with INVALID_ARGUMENT, instead of a transport error.
	s.srv = grpc.NewServer(grpc.MaxRecvMsgSize(4 * MaxRequestBytes))
	loggingpb.RegisterLoggingServiceV2Server(s.srv, s)
	go s.srv.Serve(ln)
	return s, nil
}

// Stop stops the server.
func (s *Server) Stop() { s.srv.Stop() }

// SetRequestError makes every request fail with what fn returns (nil: go on), before any
// entry is written.
func (s *Server) SetRequestError(fn func(*loggingpb.WriteLogEntriesRequest) error) {
	s.mu.Lock()
	s.before = fn
	s.mu.Unlock()
}

// SetErrorAfterWrite makes a request return what fn returns after its entries were written:
// the client sees a failure, Cloud Logging has the entries (a retry writes them again).
func (s *Server) SetErrorAfterWrite(fn func(*loggingpb.WriteLogEntriesRequest) error) {
	s.mu.Lock()
	s.after = fn
	s.mu.Unlock()
}

// SetEntryError makes the entries fn returns a status for fail (as merged with the request's
// log name, resource and labels).
func (s *Server) SetEntryError(fn func(*loggingpb.LogEntry) *status.Status) {
	s.mu.Lock()
	s.entryError = fn
	s.mu.Unlock()
}

// Requests returns how many WriteLogEntries calls arrived.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Entries returns every entry written, duplicates included, in arrival order.
func (s *Server) Entries() []*loggingpb.LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

// Len returns how many entries were written, duplicates included.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Query returns the entries as a Cloud Logging query shows them: entries of one project with
// the same insertId and timestamp are one, and they come in timestamp order (insertId
// breaking ties).
func (s *Server) Query() []*loggingpb.LogEntry {
	s.mu.Lock()
	all := slices.Clone(s.entries)
	s.mu.Unlock()
	type key struct {
		project, insertID string
		sec               int64
		nanos             int32
	}
	seen := make(map[key]bool, len(all))
	out := all[:0]
	for _, e := range all {
		k := key{projectOf(e.GetLogName()), e.GetInsertId(), e.GetTimestamp().GetSeconds(), e.GetTimestamp().GetNanos()}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *loggingpb.LogEntry) int {
		if c := a.GetTimestamp().AsTime().Compare(b.GetTimestamp().AsTime()); c != 0 {
			return c
		}
		return strings.Compare(a.GetInsertId(), b.GetInsertId())
	})
	return out
}

func projectOf(logName string) string {
	p, _, _ := strings.Cut(strings.TrimPrefix(logName, "projects/"), "/")
	return p
}

// WriteLogEntries implements the API method.
func (s *Server) WriteLogEntries(ctx context.Context, req *loggingpb.WriteLogEntriesRequest) (*loggingpb.WriteLogEntriesResponse, error) {
	s.mu.Lock()
	s.requests++
	before, after, entryError, project := s.before, s.after, s.entryError, s.project
	s.mu.Unlock()
	if before != nil {
		if err := before(req); err != nil {
			return nil, err
		}
	}
	if n := proto.Size(req); n > MaxRequestBytes {
		return nil, status.Errorf(codes.InvalidArgument, "Request payload size exceeds the limit: %d bytes.", MaxRequestBytes)
	}
	if s.MaxEntries > 0 && len(req.GetEntries()) > s.MaxEntries {
		return nil, status.Errorf(codes.InvalidArgument, "too many entries: %d > %d", len(req.GetEntries()), s.MaxEntries)
	}
	if len(req.GetEntries()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "entries: none")
	}
	if req.GetLogName() != "" {
		if err := checkLogName(req.GetLogName()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "log_name: %v", err)
		}
		if project != "" && projectOf(req.GetLogName()) != project {
			return nil, status.Errorf(codes.PermissionDenied, "The caller does not have permission to write to %s", req.GetLogName())
		}
	}

	now := s.Now()
	var ok []*loggingpb.LogEntry
	failed := map[int32]*status.Status{}
	for i, e := range req.GetEntries() {
		m := merge(req, e, now)
		st := s.check(m, now, project)
		if st == nil && entryError != nil {
			st = entryError(m)
		}
		if st != nil {
			failed[int32(i)] = st
			continue
		}
		ok = append(ok, m)
	}
	if len(failed) > 0 && (!req.GetPartialSuccess() || len(ok) == 0) {
		// Nothing written: the status of one failed entry, without per-entry errors.
		first := slices.Min(mapsKeys(failed))
		return nil, failed[first].Err()
	}
	s.mu.Lock()
	s.entries = append(s.entries, ok...)
	s.mu.Unlock()
	if len(failed) > 0 {
		first := slices.Min(mapsKeys(failed))
		pe := &loggingpb.WriteLogEntriesPartialErrors{LogEntryErrors: map[int32]*rpcstatus.Status{}}
		for k, st := range failed {
			pe.LogEntryErrors[k] = st.Proto()
		}
		st, err := status.New(failed[first].Code(), failed[first].Message()).WithDetails(pe)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "fake: details: %v", err)
		}
		return nil, st.Err()
	}
	if after != nil {
		if err := after(req); err != nil {
			return nil, err
		}
	}
	return &loggingpb.WriteLogEntriesResponse{}, nil
}

func mapsKeys(m map[int32]*status.Status) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// merge returns e with the request's log name, resource and labels where e has none, and the
// timestamp and insertId the API supplies when missing.
func merge(req *loggingpb.WriteLogEntriesRequest, e *loggingpb.LogEntry, now time.Time) *loggingpb.LogEntry {
	m := proto.Clone(e).(*loggingpb.LogEntry)
	if m.LogName == "" {
		m.LogName = req.GetLogName()
	}
	if m.Resource == nil {
		m.Resource = proto.Clone(req.GetResource()).(*monitoredres.MonitoredResource)
	}
	if len(req.GetLabels()) > 0 {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		for k, v := range req.GetLabels() {
			if _, ok := m.Labels[k]; !ok {
				m.Labels[k] = v
			}
		}
	}
	if m.Timestamp == nil {
		m.Timestamp = timestamppb.New(now)
	}
	if m.InsertId == "" {
		m.InsertId = fmt.Sprintf("fake-%d", now.UnixNano())
	}
	m.ReceiveTimestamp = timestamppb.New(now)
	return m
}

var resourceLabels = map[string][]string{
	"k8s_container": {"cluster_name", "container_name", "location", "namespace_name", "pod_name", "project_id"},
	"k8s_node":      {"cluster_name", "location", "node_name", "project_id"},
	"k8s_pod":       {"cluster_name", "location", "namespace_name", "pod_name", "project_id"},
	"global":        {"project_id"},
}

func invalid(format string, args ...any) *status.Status {
	return status.Newf(codes.InvalidArgument, format, args...)
}

// check validates one merged entry as the API would.
func (s *Server) check(e *loggingpb.LogEntry, now time.Time, project string) *status.Status {
	if err := checkLogName(e.GetLogName()); err != nil {
		return invalid("log_name %q: %v", e.GetLogName(), err)
	}
	if project != "" && projectOf(e.GetLogName()) != project {
		return status.Newf(codes.PermissionDenied, "The caller does not have permission to write to %s", e.GetLogName())
	}
	r := e.GetResource()
	want, ok := resourceLabels[r.GetType()]
	if !ok {
		return invalid("resource type %q is not one the fake knows", r.GetType())
	}
	if len(r.GetLabels()) != len(want) {
		return invalid("resource %s: labels %v, want exactly %v", r.GetType(), r.GetLabels(), want)
	}
	for _, k := range want {
		if r.GetLabels()[k] == "" {
			return invalid("resource %s: label %s missing", r.GetType(), k)
		}
	}
	if n := proto.Size(e); n > MaxEntryBytes {
		return invalid("Log entry with size %d exceeds maximum size of %d", n, MaxEntryBytes)
	}
	if e.GetPayload() == nil {
		return invalid("entry has no payload")
	}
	if depth(e.GetJsonPayload(), 0) > MaxStructDepth {
		return invalid("jsonPayload nested deeper than %d", MaxStructDepth)
	}
	ts := e.GetTimestamp().AsTime()
	if ts.After(now.Add(24 * time.Hour)) {
		return invalid("Timestamp %s is more than 24 hours in the future", ts.Format(time.RFC3339Nano))
	}
	if ts.Before(now.Add(-s.Retention)) {
		return invalid("Timestamp %s is older than the retention period", ts.Format(time.RFC3339Nano))
	}
	if len(e.GetLabels()) > MaxLabels {
		return invalid("%d labels, more than %d", len(e.GetLabels()), MaxLabels)
	}
	for k, v := range e.GetLabels() {
		if len(k) > MaxLabelKeyBytes || len(v) > MaxLabelValue {
			return invalid("label %.40q: key of %d bytes or value of %d bytes over the limits", k, len(k), len(v))
		}
	}
	if _, ok := loggingSeverities[int32(e.GetSeverity())]; !ok {
		return invalid("severity %d is not a LogSeverity", e.GetSeverity())
	}
	return nil
}

var loggingSeverities = map[int32]bool{0: true, 100: true, 200: true, 300: true, 400: true, 500: true, 600: true, 700: true, 800: true}

func depth(st *structpb.Struct, d int) int {
	if st == nil {
		return d
	}
	max := d + 1
	for _, v := range st.GetFields() {
		max = valueDepth(v, d+1, max)
	}
	return max
}

func valueDepth(v *structpb.Value, d, max int) int {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		if n := depth(k.StructValue, d); n > max {
			max = n
		}
	case *structpb.Value_ListValue:
		if d+1 > max {
			max = d + 1
		}
		for _, e := range k.ListValue.GetValues() {
			max = valueDepth(e, d+1, max)
		}
	}
	return max
}

var logNameRE = regexp.MustCompile(`^projects/([a-z][a-z0-9-]{4,28}[a-z0-9])/logs/([^/]+)$`)

// checkLogName checks "projects/[PROJECT_ID]/logs/[LOG_ID]" with LOG_ID URL-encoded, under 512
// characters, of letters, digits, '/', '_', '-' and '.'.
func checkLogName(name string) error {
	m := logNameRE.FindStringSubmatch(name)
	if m == nil {
		return fmt.Errorf("not projects/[PROJECT_ID]/logs/[LOG_ID] with the LOG_ID URL-encoded")
	}
	id, err := url.PathUnescape(m[2])
	if err != nil {
		return fmt.Errorf("LOG_ID: %v", err)
	}
	if len(id) == 0 || len(id) >= 512 {
		return fmt.Errorf("LOG_ID of %d characters", len(id))
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("/_-.", c)) {
			return fmt.Errorf("LOG_ID %q has %q", id, c)
		}
	}
	return nil
}
