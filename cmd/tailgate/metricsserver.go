package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"
)

// The metrics listeners (the agent's metrics.listen, the loader's --metrics-listen) are
// reachable from every pod on the node's network, so each bounds what a client can hold:
//
//   - connections: at most 64 at once; past that, new ones wait in the kernel's
//     accept queue until one closes (a scraper is one or two connections);
//   - time: request headers within 5s, the whole request within 10s, the response within 30s
//     (90s with pprof, whose CPU profile streams for its `seconds`, at most 60), an idle
//     keep-alive connection 60s (Prometheus scrapes every 15-60s over one);
//   - size: headers at most 16 KiB; a request body is never read by these handlers and is cut
//     at 4 KiB (net/http discards at most 256 KiB of an unread body before it closes the
//     connection instead).
//
// pprof is served only when asked for (metrics.pprof: true): it lets whoever reaches the port
// take heap and goroutine dumps, allocation, block and mutex profiles, execution traces and
// CPU profiles, which reveal code paths and cost CPU while they run.
type httpLimits struct {
	maxConns                   int
	header, read, write, idle  time.Duration
	pprofWrite                 time.Duration // write timeout when pprof is on
	maxHeaderBytes, maxBodyLen int
}

// metricsLimits are the limits of every metrics listener.
func metricsLimits() httpLimits {
	return httpLimits{
		maxConns: 64,
		header:   5 * time.Second, read: 10 * time.Second, write: 30 * time.Second, idle: 60 * time.Second,
		pprofWrite:     (pprofMaxSeconds + 30) * time.Second,
		maxHeaderBytes: 16 << 10, maxBodyLen: 4 << 10,
	}
}

const pprofMaxSeconds = 60

// newMetricsServer returns the server for a metrics address and the listener to serve it on.
func newMetricsServer(ln net.Listener, mux *http.ServeMux, withPprof bool, lim httpLimits) (*http.Server, net.Listener) {
	write := lim.write
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
		mux.HandleFunc("/debug/pprof/profile", limitSeconds(pprof.Profile))
		mux.HandleFunc("/debug/pprof/trace", limitSeconds(pprof.Trace))
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		write = lim.pprofWrite
	}
	srv := &http.Server{
		Handler:           http.MaxBytesHandler(mux, int64(lim.maxBodyLen)),
		ReadHeaderTimeout: lim.header,
		ReadTimeout:       lim.read,
		WriteTimeout:      write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
	}
	return srv, &limitListener{Listener: ln, sem: make(chan struct{}, lim.maxConns), done: make(chan struct{})}
}

// limitSeconds refuses profiles and traces longer than pprofMaxSeconds.
func limitSeconds(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("seconds"); s != "" {
			if n, err := strconv.Atoi(s); err != nil || n <= 0 || n > pprofMaxSeconds {
				http.Error(w, "seconds: a whole number from 1 to 60\n", http.StatusBadRequest)
				return
			}
		}
		h(w, r)
	}
}

// limitListener accepts at most cap(sem) connections at once; Accept waits for a slot.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
