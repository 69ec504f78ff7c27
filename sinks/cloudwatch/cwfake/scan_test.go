package cwfake

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParsePut checks the fake's PutLogEvents decoder against encoding/json on any body.
func FuzzParsePut(f *testing.F) {
	f.Add([]byte(`{"logEvents":[{"timestamp":1,"message":"a\"b\\c\n\u00e9\ud83d\ude00\ud800x"}],"logGroupName":"g","logStreamName":"s"}`))
	f.Add([]byte(`{"logGroupName":"g","logStreamName":"s","sequenceToken":null,"logEvents":[{"message":"m","timestamp":-5,"x":[1,{"y":true}]}]}`))
	f.Add([]byte(` { "logEvents" : [ ] } `))
	f.Fuzz(func(t *testing.T, body []byte) {
		var want struct {
			LogGroupName  string `json:"logGroupName"`
			LogStreamName string `json:"logStreamName"`
			LogEvents     []struct {
				Timestamp *int64  `json:"timestamp"`
				Message   *string `json:"message"`
			} `json:"logEvents"`
		}
		// encoding/json matches keys without regard to case; the service (and parsePut) do not.
		for _, k := range []string{"logGroupName", "logStreamName", "logEvents", "timestamp", "message"} {
			if bytes.Count(bytes.ToLower(body), bytes.ToLower([]byte(k))) != bytes.Count(body, []byte(k)) {
				return
			}
		}
		jerr := json.Unmarshal(body, &want)
		var got []putEvent
		g, s, n, err := parsePut(body, func(_, _ string, e putEvent) error {
			got = append(got, putEvent{e.ts, append([]byte(nil), e.msg...)})
			return nil
		})
		if err != nil || jerr != nil {
			return // both reject malformed input; only accepted bodies are compared
		}
		if g != want.LogGroupName || s != want.LogStreamName || n != len(want.LogEvents) {
			t.Fatalf("names %q %q n %d; encoding/json %q %q %d", g, s, n, want.LogGroupName, want.LogStreamName, len(want.LogEvents))
		}
		for i, e := range want.LogEvents {
			if e.Timestamp == nil || e.Message == nil {
				return
			}
			if got[i].ts != *e.Timestamp || string(got[i].msg) != *e.Message {
				t.Fatalf("event %d: (%d, %q); encoding/json (%d, %q)", i, got[i].ts, got[i].msg, *e.Timestamp, *e.Message)
			}
		}
	})
}
