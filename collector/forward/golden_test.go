package forward

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/frames from the builders and the golden envelopes")

// goldenFrames are written to testdata/frames by -update; the files are then the fixtures.
func goldenFrames() map[string][]byte {
	rec := func(i int) []byte {
		return record(nil, "log", "request "+string(rune('a'+i)), "status", 200+i, "latency", 0.25, "bin", []byte{0xff, 0xfe, 0x01})
	}
	var es, fb [][]byte
	for i := range 3 {
		es = append(es, entry(t0, rec(i), false))
		fb = append(fb, entry(t0, rec(i), true))
	}
	return map[string][]byte{
		"message.msgpack":              messageFrame("app.web", t0, rec(0), option(nil, "bWVzc2FnZQ==")),
		"forward.msgpack":              forwardFrame("app.web", es, option(nil, "Zm9yd2FyZA==", "size", 3)),
		"packed_forward.msgpack":       packedFrame("app.web", es, option(nil, "cGFja2Vk", "size", 3), 0),
		"compressed_forward.msgpack":   packedFrame("app.web", es, option(nil, "Z3ppcA==", "compressed", "gzip", "size", 3), 2),
		"fluentbit_forward.msgpack":    forwardFrame("app.web", fb, option(nil, "ZmI=", "fluent_signal", 0, "size", 3)),
		"fluentbit_compressed.msgpack": packedFrame("app.web", fb, option(nil, "ZmJ6", "compressed", "gzip", "fluent_signal", 0), 1),
		"logger_json.json":             []byte(`["app.web",1795402800,{"message":"from json","n":1,"tags":["a","b"]},{"chunk":"anNvbg=="}]`),
	}
}

func TestGoldenFrames(t *testing.T) {
	dir := filepath.Join("testdata", "frames")
	if *update {
		os.MkdirAll(dir, 0o755)
		for name, b := range goldenFrames() {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.*"))
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			frame, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(file, ".json") {
				if frame, _, err = appendJSONAsMsgpack(nil, frame); err != nil {
					t.Fatal(err)
				}
			}
			envs, _, chunk, err := decodeAll(frame)
			if err != nil {
				t.Fatal(err)
			}
			got := "chunk: " + chunk + "\n" + strings.Join(envs, "\n") + "\n"
			golden := strings.TrimSuffix(file, filepath.Ext(file)) + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
	if n == 0 {
		t.Fatal("no frames in testdata/frames")
	}
}
