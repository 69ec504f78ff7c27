package main

import (
	"math/rand/v2"
	"strconv"
	"time"
)

var (
	levels  = []string{"info", "info", "info", "info", "info", "info", "debug", "debug", "warn", "error"}
	loggers = []string{"http", "db", "worker", "cache", "auth", "grpc"}
	methods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	routes  = []string{"/api/v1/orders", "/api/v1/users", "/api/v2/cart/items", "/healthz", "/api/v1/payments", "/api/v1/search", "/metrics"}
	msgs    = []string{"request completed", "cache miss", "query executed", "job dequeued", "token validated",
		"upstream responded", "retrying request", "connection pool exhausted", "message published"}
	words = []string{"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
		"eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim", "minim",
		"veniam", "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip", "commodo"}
	frames = []string{"OrderService.place", "PaymentClient.charge", "CartRepository.load", "HttpHandler.serve",
		"RetryPolicy.execute", "JsonCodec.decode", "ConnectionPool.acquire", "Scheduler.run"}
)

const hexDigits = "0123456789abcdef"

func appendHex(b []byte, r *rand.Rand, n int) []byte {
	for n > 0 {
		x := r.Uint64()
		for i := 0; i < 16 && n > 0; i, n = i+1, n-1 {
			b = append(b, hexDigits[x&15])
			x >>= 4
		}
	}
	return b
}

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

// appendPayload appends one single-line JSON application log record of about target bytes
// and reports its level. Fields are added in a fixed order while there is room, so small
// records carry the core fields and large ones the full request context.
func appendPayload(b []byte, r *rand.Rand, ts time.Time, target int) ([]byte, string) {
	start := len(b)
	level := pick(r, levels)
	b = append(b, `{"level":"`...)
	b = append(b, level...)
	b = append(b, `","ts":"`...)
	b = ts.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","logger":"`...)
	b = append(b, pick(r, loggers)...)
	b = append(b, `","msg":"`...)
	b = append(b, pick(r, msgs)...)
	b = append(b, `","trace_id":"`...)
	b = appendHex(b, r, 32)
	b = append(b, '"')
	room := func(n int) bool { return len(b)-start+n < target }
	if room(28) {
		b = append(b, `,"span_id":"`...)
		b = appendHex(b, r, 16)
		b = append(b, '"')
	}
	if room(60) {
		b = append(b, `,"method":"`...)
		b = append(b, pick(r, methods)...)
		b = append(b, `","path":"`...)
		b = append(b, pick(r, routes)...)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
		b = append(b, `","status":`...)
		b = strconv.AppendInt(b, int64(status(r, level)), 10)
	}
	if room(22) {
		b = append(b, `,"latency_ms":`...)
		b = strconv.AppendFloat(b, r.ExpFloat64()*25, 'f', 3, 64)
	}
	if room(16) {
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, int64(r.IntN(1<<20)), 10)
	}
	if room(30) {
		b = append(b, `,"user":"u-`...)
		b = appendHex(b, r, 12)
		b = append(b, '"')
	}
	if room(14) {
		b = append(b, `,"detail":"`...)
		for first := true; first || room(3); first = false {
			b = append(b, pick(r, words)...)
			b = append(b, ' ')
		}
		b[len(b)-1] = '"'
	}
	return append(b, '}'), level
}

func status(r *rand.Rand, level string) int {
	switch level {
	case "error":
		return 500 + r.IntN(4)
	case "warn":
		return 400 + r.IntN(30)
	}
	return 200
}

// appendLongPayload appends a JSON error record with a stack trace of about n bytes: the kind
// of record a runtime splits into partial lines.
func appendLongPayload(b []byte, r *rand.Rand, ts time.Time, n int) []byte {
	start := len(b)
	b = append(b, `{"level":"error","ts":"`...)
	b = ts.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","msg":"unhandled exception","trace_id":"`...)
	b = appendHex(b, r, 32)
	b = append(b, `","error":"java.lang.IllegalStateException: order \"`...)
	b = appendHex(b, r, 8)
	b = append(b, `\" in unexpected state","stack":"`...)
	for len(b)-start < n-40 {
		b = append(b, `\n\tat com.example.`...)
		b = append(b, pick(r, frames)...)
		b = append(b, "(Main.java:"...)
		b = strconv.AppendInt(b, int64(10+r.IntN(990)), 10)
		b = append(b, ')')
	}
	return append(b, `"}`...)
}

var (
	pyModules = []string{"app/views", "app/models", "app/tasks", "lib/client", "lib/retry"}
	pyFuncs   = []string{"checkout", "load_cart", "charge", "run", "dispatch", "wrapper"}
	pyErrors  = []string{"ValueError: invalid literal for int() with base 10: 'abc'", "KeyError: 'user_id'",
		"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='payments', port=443): Max retries exceeded",
		"ZeroDivisionError: division by zero"}
	goFuncs = []string{"main.(*Server).handle", "main.(*Cart).Total", "net/http.HandlerFunc.ServeHTTP",
		"main.worker", "github.com/example/shop/orders.(*Store).Get"}
	goPanics = []string{"runtime error: index out of range [5] with length 3",
		"runtime error: invalid memory address or nil pointer dereference", "assignment to entry in nil map"}
)

// appendTrace appends the lines of one uncaught-exception stack trace to t, each line a new
// slice: Java (with a cause) 60%, Python 25%, Go 15%, written the way each runtime prints it.
func appendTrace(t [][]byte, r *rand.Rand) [][]byte {
	add := func(parts ...string) {
		var l []byte
		for _, p := range parts {
			l = append(l, p...)
		}
		t = append(t, l)
	}
	num := func(lo, n int) string { return strconv.Itoa(lo + r.IntN(n)) }
	switch x := r.IntN(20); {
	case x < 12:
		add("java.lang.IllegalStateException: order ", string(appendHex(nil, r, 8)), " in unexpected state")
		for range 8 + r.IntN(23) {
			add("\tat com.example.", pick(r, frames), "(", pick(r, frames)[:4], ".java:", num(10, 990), ")")
		}
		if r.IntN(2) == 0 {
			add("Caused by: java.io.IOException: connection reset by peer")
			for range 3 + r.IntN(6) {
				add("\tat com.example.", pick(r, frames), "(Net.java:", num(10, 990), ")")
			}
			add("\t... ", num(5, 40), " more")
		}
	case x < 17:
		add("Traceback (most recent call last):")
		for range 3 + r.IntN(6) {
			add(`  File "/app/`, pick(r, pyModules), `.py", line `, num(1, 400), ", in ", pick(r, pyFuncs))
			add("    result = ", pick(r, pyFuncs), "(request, ", pick(r, words), ")")
		}
		add(pick(r, pyErrors))
	default:
		add("panic: ", pick(r, goPanics))
		add("")
		add("goroutine ", num(1, 500), " [running]:")
		for range 4 + r.IntN(9) {
			add(pick(r, goFuncs), "(0xc000", string(appendHex(nil, r, 6)), ", 0x", num(1, 9000), ")")
			add("\t/app/", pick(r, words), ".go:", num(10, 900), " +0x", string(appendHex(nil, r, 3)))
		}
	}
	return t
}
