// Package cwfake is an in-process CloudWatch Logs server for tests and benchmarks: it speaks
// the awsJson1_1 protocol the SDKs use (POST /, X-Amz-Target Logs_20140328.<Operation>,
// application/x-amz-json-1.1), answers with the documented error shapes
// ({"__type": code, "message": text} and an x-amzn-RequestId header), and enforces every
// PutLogEvents limit: at most 10,000 events and 1,048,576 bytes (UTF-8 message bytes + 26 per
// event), each event at most 1 MiB and not empty, events in time order, valid events spanning
// at most 24 hours, a valid UTF-8 body; events too new, too old or past the group's retention
// come back in rejectedLogEventsInfo. It can throttle a share of the calls, be down (503 for
// everything), or deny access, and it remembers every event it stored.
//
// Operations: CreateLogGroup, CreateLogStream, PutRetentionPolicy, DeleteLogGroup,
// DeleteLogStream, PutLogEvents, GetLogEvents, DescribeLogStreams.
package cwfake

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Limits of the API, as documented.
const (
	MaxEvents       = 10_000
	MaxRequestBytes = 1_048_576
	EventOverhead   = 26
	MaxEventBytes   = 1 << 20
	MaxSpan         = 24 * time.Hour
	MaxAge          = 14 * 24 * time.Hour
	MaxFuture       = 2 * time.Hour
)

// Options configure a Server.
type Options struct {
	// RequireSignature answers 403 IncompleteSignatureException to calls without SigV4
	// headers (Authorization: AWS4-HMAC-SHA256 Credential=..., X-Amz-Date).
	RequireSignature bool
	// ThrottleRate is the share of PutLogEvents calls answered with ThrottlingException
	// (0.1: one in ten, chosen at random with Seed).
	ThrottleRate float64
	Seed         uint64
	// Now is the service's clock for the time checks; nil means time.Now.
	Now func() time.Time
	// KeepMessages stores every event's message (tests read them back); without it only a hash
	// of each message is kept, for counting losses and duplicates in benchmarks.
	KeepMessages bool
	// Poison makes a PutLogEvents call fail with InvalidParameterException when one of its
	// messages contains it (a stand-in for an event the service refuses).
	Poison string
}

// Event is one stored log event.
type Event struct {
	Timestamp int64
	Message   string
	Ingestion int64
}

type stream struct {
	events []Event
	hashes map[uint64]uint32
	count  int
}

type group struct {
	retention int
	tags      map[string]string
	streams   map[string]*stream
}

// Stats count what the server saw.
type Stats struct {
	Calls      map[string]int // by operation
	Errors     map[string]int // by error code
	Events     int            // stored
	Duplicates int            // stored events whose message was stored before in the same stream
	Rejected   int            // returned in rejectedLogEventsInfo
}

// Server is the fake service; use it as an http.Handler.
type Server struct {
	opts Options
	seed maphash.Seed

	mu     sync.Mutex
	rnd    *rand.Rand
	groups map[string]*group
	stats  Stats
	outage atomic.Bool
	denied atomic.Bool
	reqID  atomic.Uint64
}

// New returns a server with no log groups.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:   opts,
		seed:   maphash.MakeSeed(),
		rnd:    rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		groups: make(map[string]*group),
		stats:  Stats{Calls: map[string]int{}, Errors: map[string]int{}},
	}
}

// SetOutage makes every call fail with 503 ServiceUnavailableException while on.
func (s *Server) SetOutage(on bool) { s.outage.Store(on) }

// SetDenied makes every call fail with AccessDeniedException while on.
func (s *Server) SetDenied(on bool) { s.denied.Store(on) }

// SetThrottleRate changes the share of throttled PutLogEvents calls.
func (s *Server) SetThrottleRate(r float64) {
	s.mu.Lock()
	s.opts.ThrottleRate = r
	s.mu.Unlock()
}

// DeleteGroup removes a log group and its streams, as DeleteLogGroup does.
func (s *Server) DeleteGroup(name string) {
	s.mu.Lock()
	delete(s.groups, name)
	s.mu.Unlock()
}

// CreateGroup creates a log group with a retention (0: never expire).
func (s *Server) CreateGroup(name string, retentionDays int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[name] == nil {
		s.groups[name] = &group{streams: map[string]*stream{}}
	}
	s.groups[name].retention = retentionDays
}

// Events returns a copy of a stream's events in the order they were stored (KeepMessages).
func (s *Server) Events(groupName, streamName string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupName]
	if g == nil || g.streams[streamName] == nil {
		return nil
	}
	return slices.Clone(g.streams[streamName].events)
}

// Streams returns "group\x00stream" for every stream.
func (s *Server) Streams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for gn, g := range s.groups {
		for sn := range g.streams {
			out = append(out, gn+"\x00"+sn)
		}
	}
	slices.Sort(out)
	return out
}

// Group returns a group's retention and tags, and whether it exists.
func (s *Server) Group(name string) (retentionDays int, tags map[string]string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[name]
	if g == nil {
		return 0, nil, false
	}
	return g.retention, g.tags, true
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Calls = make(map[string]int, len(s.stats.Calls))
	for k, v := range s.stats.Calls {
		st.Calls[k] = v
	}
	st.Errors = make(map[string]int, len(s.stats.Errors))
	for k, v := range s.stats.Errors {
		st.Errors[k] = v
	}
	return st
}

// DistinctEvents counts the distinct messages stored, over all streams (by hash).
func (s *Server) DistinctEvents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.groups {
		for _, st := range g.streams {
			n += len(st.hashes)
		}
	}
	return n
}

// apiError is a documented error answer.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func invalid(format string, args ...any) *apiError {
	return &apiError{400, "InvalidParameterException", fmt.Sprintf(format, args...)}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", "fake-"+strconv.FormatUint(s.reqID.Add(1), 10))
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "Logs_20140328.")
	body, err := io.ReadAll(r.Body)
	var res any
	var aerr *apiError
	switch {
	case err != nil:
		aerr = &apiError{400, "SerializationException", "read body: " + err.Error()}
	case r.Method != http.MethodPost || !ok:
		aerr = &apiError{400, "UnknownOperationException", "no operation in X-Amz-Target " + strconv.Quote(target)}
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1"):
		aerr = &apiError{400, "SerializationException", "Content-Type must be application/x-amz-json-1.1"}
	case s.opts.RequireSignature && !signed(r):
		aerr = &apiError{403, "IncompleteSignatureException", "Authorization header with AWS4-HMAC-SHA256 Credential, SignedHeaders and Signature, and X-Amz-Date, are required"}
	case s.outage.Load():
		aerr = &apiError{503, "ServiceUnavailableException", "The service cannot complete the request."}
	case s.denied.Load():
		aerr = &apiError{400, "AccessDeniedException", "User is not authorized to perform: logs:" + op}
	case !utf8.Valid(body):
		aerr = &apiError{400, "SerializationException", "request body is not valid UTF-8"}
	default:
		res, aerr = s.call(op, body)
	}
	s.mu.Lock()
	s.stats.Calls[op]++
	if aerr != nil {
		s.stats.Errors[aerr.code]++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if aerr != nil {
		w.WriteHeader(aerr.status)
		json.NewEncoder(w).Encode(map[string]string{"__type": aerr.code, "message": aerr.msg})
		return
	}
	if res == nil {
		res = struct{}{}
	}
	json.NewEncoder(w).Encode(res)
}

// signed reports whether r carries the headers of a SigV4 signature.
func signed(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	return strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=") && strings.Contains(a, "SignedHeaders=") &&
		strings.Contains(a, "Signature=") && r.Header.Get("X-Amz-Date") != ""
}

// controlInput holds the members of every operation but PutLogEvents the fake serves.
type controlInput struct {
	LogGroupName    string            `json:"logGroupName"`
	LogStreamName   string            `json:"logStreamName"`
	Tags            map[string]string `json:"tags"`
	RetentionInDays int               `json:"retentionInDays"`
	NextToken       string            `json:"nextToken"`
	Limit           int               `json:"limit"`
}

func (s *Server) call(op string, body []byte) (any, *apiError) {
	if op == "PutLogEvents" {
		return s.putLogEvents(body)
	}
	var in controlInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{400, "SerializationException", err.Error()}
	}
	switch op {
	case "CreateLogGroup":
		if !validGroupName(in.LogGroupName) {
			return nil, invalid("invalid log group name %q", in.LogGroupName)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.groups[in.LogGroupName] != nil {
			return nil, &apiError{400, "ResourceAlreadyExistsException", "The specified log group already exists"}
		}
		s.groups[in.LogGroupName] = &group{tags: in.Tags, streams: map[string]*stream{}}
		return nil, nil
	case "CreateLogStream":
		if !validStreamName(in.LogStreamName) {
			return nil, invalid("invalid log stream name %q", in.LogStreamName)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.groups[in.LogGroupName]
		if g == nil {
			return nil, &apiError{400, "ResourceNotFoundException", "The specified log group does not exist."}
		}
		if g.streams[in.LogStreamName] != nil {
			return nil, &apiError{400, "ResourceAlreadyExistsException", "The specified log stream already exists"}
		}
		g.streams[in.LogStreamName] = &stream{hashes: map[uint64]uint32{}}
		return nil, nil
	case "PutRetentionPolicy":
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.groups[in.LogGroupName]
		if g == nil {
			return nil, &apiError{400, "ResourceNotFoundException", "The specified log group does not exist."}
		}
		g.retention = in.RetentionInDays
		return nil, nil
	case "DeleteLogGroup", "DeleteLogStream":
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.groups[in.LogGroupName]
		if g == nil || op == "DeleteLogStream" && g.streams[in.LogStreamName] == nil {
			return nil, &apiError{400, "ResourceNotFoundException", "The specified resource does not exist."}
		}
		if op == "DeleteLogGroup" {
			delete(s.groups, in.LogGroupName)
		} else {
			delete(g.streams, in.LogStreamName)
		}
		return nil, nil
	case "GetLogEvents":
		return s.getLogEvents(in)
	case "DescribeLogStreams":
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.groups[in.LogGroupName]
		if g == nil {
			return nil, &apiError{400, "ResourceNotFoundException", "The specified log group does not exist."}
		}
		type ls struct {
			LogStreamName string `json:"logStreamName"`
		}
		out := struct {
			LogStreams []ls `json:"logStreams"`
		}{LogStreams: []ls{}}
		for name := range g.streams {
			out.LogStreams = append(out.LogStreams, ls{name})
		}
		slices.SortFunc(out.LogStreams, func(a, b ls) int { return strings.Compare(a.LogStreamName, b.LogStreamName) })
		return out, nil
	}
	return nil, &apiError{400, "UnknownOperationException", "operation " + op + " is not supported by the fake"}
}

type rejected struct {
	TooNewLogEventStartIndex *int `json:"tooNewLogEventStartIndex,omitempty"`
	TooOldLogEventEndIndex   *int `json:"tooOldLogEventEndIndex,omitempty"`
	ExpiredLogEventEndIndex  *int `json:"expiredLogEventEndIndex,omitempty"`
}

// checkedEvent is what the fake keeps of an event while it checks a request.
type checkedEvent struct {
	ts   int64
	hash uint64
	msg  string // with KeepMessages
}

func (s *Server) putLogEvents(body []byte) (any, *apiError) {
	var (
		events []checkedEvent
		total  int
		aerr   *apiError
	)
	group, stream, _, err := parsePut(body, func(_, _ string, e putEvent) error {
		i := len(events)
		size := len(e.msg) + EventOverhead
		switch {
		case len(e.msg) == 0:
			aerr = invalid("logEvents[%d].message: Member must have length greater than or equal to 1", i)
		case size > MaxEventBytes:
			aerr = invalid("Log event too large: logEvents[%d] is %d bytes; the limit is %d", i, size, MaxEventBytes)
		case s.opts.Poison != "" && strings.Contains(string(e.msg), s.opts.Poison):
			aerr = invalid("logEvents[%d]: refused", i)
		case i > 0 && e.ts < events[i-1].ts:
			aerr = invalid("Log events in a single PutLogEvents request must be in chronological order.")
		}
		if aerr != nil {
			return aerr
		}
		total += size
		ce := checkedEvent{ts: e.ts, hash: maphash.Bytes(s.seed, e.msg)}
		if s.opts.KeepMessages {
			ce.msg = string(e.msg)
		}
		events = append(events, ce)
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, &apiError{400, "SerializationException", err.Error()}
	}
	n := len(events)
	if n < 1 || n > MaxEvents {
		return nil, invalid("logEvents: %d events; between 1 and %d are accepted", n, MaxEvents)
	}
	if total > MaxRequestBytes {
		return nil, invalid("Upload too large: %d bytes exceeds the limit of %d", total, MaxRequestBytes)
	}
	now := s.opts.Now()
	oldest := now.Add(-MaxAge).UnixMilli()
	newest := now.Add(MaxFuture).UnixMilli()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.ThrottleRate > 0 && s.rnd.Float64() < s.opts.ThrottleRate {
		return nil, &apiError{400, "ThrottlingException", "Rate exceeded"}
	}
	g := s.groups[group]
	if g == nil {
		return nil, &apiError{400, "ResourceNotFoundException", "The specified log group does not exist."}
	}
	st := g.streams[stream]
	if st == nil {
		return nil, &apiError{400, "ResourceNotFoundException", "The specified log stream does not exist."}
	}
	expiredBefore := int64(-1 << 63)
	if g.retention > 0 {
		expiredBefore = now.Add(-time.Duration(g.retention) * 24 * time.Hour).UnixMilli()
	}
	var rej rejected
	first, last := int64(0), int64(0)
	valid := 0
	for i, e := range events {
		switch {
		case e.ts > newest:
			if rej.TooNewLogEventStartIndex == nil {
				rej.TooNewLogEventStartIndex = ptr(i)
			}
		case e.ts < oldest:
			rej.TooOldLogEventEndIndex = ptr(i + 1)
		case e.ts < expiredBefore:
			rej.ExpiredLogEventEndIndex = ptr(i + 1)
		default:
			if valid == 0 {
				first = e.ts
			}
			last = e.ts
			valid++
		}
	}
	if valid > 0 && last-first > MaxSpan.Milliseconds() {
		return nil, invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	ingest := now.UnixMilli()
	for _, e := range events {
		if e.ts > newest || e.ts < oldest || e.ts < expiredBefore {
			s.stats.Rejected++
			continue
		}
		if st.hashes[e.hash] > 0 {
			s.stats.Duplicates++
		}
		st.hashes[e.hash]++
		st.count++
		s.stats.Events++
		if s.opts.KeepMessages {
			st.events = append(st.events, Event{Timestamp: e.ts, Message: e.msg, Ingestion: ingest})
		}
	}
	out := map[string]any{}
	if rej != (rejected{}) {
		out["rejectedLogEventsInfo"] = rej
	}
	return out, nil
}

func (s *Server) getLogEvents(in controlInput) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[in.LogGroupName]
	if g == nil || g.streams[in.LogStreamName] == nil {
		return nil, &apiError{400, "ResourceNotFoundException", "The specified log group or stream does not exist."}
	}
	evs := g.streams[in.LogStreamName].events
	start := 0
	if t, ok := strings.CutPrefix(in.NextToken, "f/"); ok {
		start, _ = strconv.Atoi(t)
	}
	limit := in.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	end := min(start+limit, len(evs))
	type outEvent struct {
		Timestamp     int64  `json:"timestamp"`
		Message       string `json:"message"`
		IngestionTime int64  `json:"ingestionTime"`
	}
	out := struct {
		Events            []outEvent `json:"events"`
		NextForwardToken  string     `json:"nextForwardToken"`
		NextBackwardToken string     `json:"nextBackwardToken"`
	}{Events: []outEvent{}, NextForwardToken: "f/" + strconv.Itoa(end), NextBackwardToken: "b/" + strconv.Itoa(start)}
	for _, e := range evs[start:end] {
		out.Events = append(out.Events, outEvent{e.Timestamp, e.Message, e.Ingestion})
	}
	return out, nil
}

func ptr(i int) *int { return &i }

func validGroupName(n string) bool {
	if len(n) < 1 || len(n) > 512 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-/.#", c) >= 0) {
			return false
		}
	}
	return true
}

func validStreamName(n string) bool {
	return len(n) >= 1 && len(n) <= 512 && !strings.ContainsAny(n, ":*")
}
