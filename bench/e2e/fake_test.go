package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The test binary doubles as a fake tailgate: with E2E_FAKE_TAILGATE set, `run --config CFG`
// reads the config the harness wrote, copies every record of the tailed files (CRI or
// docker, partials joined) to the file sink as envelopes, counts them in
// tailgate_sink_records_total{sink="local",result="sent"} and serves /metrics until SIGTERM.
// E2E_FAKE_DROP=N drops the Nth record; E2E_FAKE_EXIT=1 exits before serving.
func TestMain(m *testing.M) {
	if os.Getenv("E2E_FAKE_TAILGATE") == "" {
		os.Exit(m.Run())
	}
	if err := fakeTailgate(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fake tailgate:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func fakeTailgate(args []string) error {
	if len(args) != 3 || args[0] != "run" || args[1] != "--config" {
		return fmt.Errorf("usage: run --config FILE, got %q", args)
	}
	if os.Getenv("E2E_FAKE_EXIT") != "" {
		return fmt.Errorf("told to fail")
	}
	cfg, err := os.ReadFile(args[2])
	if err != nil {
		return err
	}
	// The harness' own config layout: one value per key, JSON-quoted.
	value := func(key string) string {
		for line := range strings.SplitSeq(string(cfg), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+": "); ok {
				v = strings.Trim(v, "[]")
				var s string
				if json.Unmarshal([]byte(v), &s) == nil {
					return s
				}
			}
		}
		return ""
	}
	reg := prometheus.NewRegistry()
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tailgate_sink_records_total", Help: "x"}, []string{"sink", "result"})
	reg.MustRegister(sent)
	sent.WithLabelValues("local", "sent")
	srv := &http.Server{Addr: value("listen"), Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.ListenAndServe()

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	out, err := os.Create(value("path"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	files, err := filepath.Glob(value("paths"))
	if err != nil {
		return err
	}
	drop := -1
	fmt.Sscan(os.Getenv("E2E_FAKE_DROP"), &drop)
	n := 0
	for _, path := range files {
		if err := fakeCopy(path, func(msg string) {
			if n++; n == drop {
				return
			}
			b, _ := json.Marshal(map[string]any{"message": msg, "source": "pods", "fields": map[string]any{}})
			w.Write(append(b, '\n'))
			sent.WithLabelValues("local", "sent").Inc()
		}); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	<-term
	return out.Close()
}

func fakeCopy(path string, emit func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var rec strings.Builder
	for sc.Scan() {
		line := sc.Text()
		var text string
		last := true
		if strings.HasPrefix(line, "{") {
			var d struct{ Log string }
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				return err
			}
			text, last = strings.TrimSuffix(d.Log, "\n"), strings.HasSuffix(d.Log, "\n")
		} else {
			p := strings.SplitN(line, " ", 4)
			if len(p) != 4 {
				return fmt.Errorf("bad line %q", line)
			}
			text, last = p[3], p[2] == "F"
		}
		rec.WriteString(text)
		if last {
			emit(rec.String())
			rec.Reset()
		}
	}
	return sc.Err()
}
