package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startMetricsServer serves mux like the agent does, with lim, until the test ends.
func startMetricsServer(t *testing.T, withPprof bool, lim httpLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "up 1\n") })
	mux.HandleFunc("/echo-body", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	srv, lln := newMetricsServer(ln, mux, withPprof, lim)
	done := make(chan struct{})
	go func() { srv.Serve(lln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsServerPprofOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		pprof bool
		path  string
		want  int
	}{
		{false, "/debug/pprof/", 404},
		{false, "/debug/pprof/heap", 404},
		{false, "/debug/pprof/profile?seconds=1", 404},
		{true, "/debug/pprof/", 200},
		{true, "/debug/pprof/goroutine?debug=1", 200},
		{true, "/debug/pprof/heap", 200},
		{true, "/debug/pprof/profile?seconds=1", 200},
		{true, "/debug/pprof/profile?seconds=61", 400},
		{true, "/debug/pprof/trace?seconds=3600", 400},
		{true, "/debug/pprof/cmdline", 404}, // the command line is not exposed
		{true, "/metrics", 200},
	} {
		addr := startMetricsServer(t, tc.pprof, metricsLimits())
		if got, body := get(t, "http://"+addr+tc.path); got != tc.want {
			t.Errorf("pprof %v: GET %s = %d, want %d (%.100s)", tc.pprof, tc.path, got, tc.want, body)
		}
	}
}

// TestMetricsServerBounds: each limit of a metrics listener, with short timeouts.
func TestMetricsServerBounds(t *testing.T) {
	lim := metricsLimits()
	lim.header, lim.read, lim.idle = 200*time.Millisecond, 400*time.Millisecond, 200*time.Millisecond
	lim.maxConns = 2
	addr := startMetricsServer(t, false, lim)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedByServer := func(c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("not closed by the server: %v", err)
		}
	}

	t.Run("slow headers are cut at the header timeout", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n") // and never the blank line
		closedByServer(c)
	})
	t.Run("an idle keep-alive connection is closed", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		closedByServer(c)
	})
	t.Run("headers over 16 KiB are refused", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%v %v", resp, err)
		}
	})
	t.Run("a body is cut at 4 KiB", func(t *testing.T) {
		resp, err := http.Post("http://"+addr+"/echo-body", "text/plain", strings.NewReader(strings.Repeat("b", 1<<20)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), "4096 http: request body too large") {
			t.Fatalf("handler read %q", b)
		}
	})
	t.Run("connections past the cap wait for a slot, then are served", func(t *testing.T) {
		hogs := []net.Conn{dial(), dial()} // silent: each holds a slot until the header timeout
		if code, _ := get(t, "http://"+addr+"/metrics"); code != 200 {
			t.Fatalf("scrape behind %d silent connections: %d", len(hogs), code)
		}
		for _, c := range hogs {
			closedByServer(c)
		}
	})
}

func TestLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &limitListener{Listener: ln, sem: make(chan struct{}, 2), done: make(chan struct{})}
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	if n := len(l.sem); n != 2 {
		t.Fatalf("%d slots taken", n)
	}
	first.Close()
	first.Close() // a second Close frees nothing more
	third := <-accepted
	if n := len(l.sem); n != 2 {
		t.Fatalf("%d slots taken after one closed and one accepted", n)
	}
	second.Close()
	third.Close()
	l.Close()
	for range accepted { // Accept returns after Close
	}
	if n := len(l.sem); n != 0 {
		t.Fatalf("%d slots still taken", n)
	}
}
