package tail

import "testing"

func TestDetectLevel(t *testing.T) {
	f := func(msg, want string) {
		t.Helper()
		got := detectLevel([]byte(msg)).String()
		if got == "" {
			got = "none"
		}
		if got != want {
			t.Errorf("detectLevel(%q) = %q, want %q", msg, got, want)
		}
	}
	// A level word first, in any case, bracketed, or followed by ':'.
	f("ERROR something broke", "error")
	f("error: could not open config", "error")
	f("Warning: deprecated flag", "warning")
	f("WARN disk 91% full", "warning")
	f("[warn] slow query", "warning")
	f("<error> x", "error")
	f("[ERROR] x", "error")
	f("INFO  server started", "info")
	f("DEBUG cache miss", "debug")
	f("TRACE enter", "trace")
	f("NOTICE reload", "notice")
	f("FATAL cannot bind", "critical")
	f("PANIC bad state", "critical")
	f("CRIT disk failed", "critical")
	f("ALERT raid degraded", "alert")
	f("EMERG kernel", "emergency")
	f("SEVERE: java.util.logging says so", "error")
	// After timestamps (logback, Spring Boot, nginx, Apache, Monolog).
	f("2026-11-23 03:00:00.123 ERROR [main] c.e.App - failed", "error")
	f("2026-11-23T03:00:00.123Z  WARN 1 --- [main] o.s.Foo : x", "warning")
	f("2026/11/23 03:00:00 [error] 12#12: *1 open() failed", "error")
	f("[Mon Nov 23 03:00:00.123 2026] [core:error] [pid 7] x", "none")
	f("[2026-11-23 03:00:00] production.ERROR: Call to undefined method", "error")
	f("[2026-11-23 03:00:00] local.DEBUG: query", "debug")
	f("1700000000.123 INFO x", "info")
	// Python logging, .NET console logger.
	f("ERROR:root:payment declined", "error")
	f("WARNING:urllib3.connectionpool:Retrying", "warning")
	f("info: Microsoft.Hosting.Lifetime[14]", "info")
	f("fail: Microsoft.AspNetCore.Server.Kestrel[13]", "error")
	f("crit: Shop.Program[0]", "critical")
	f("dbug: Shop.Cart[0]", "debug")
	f("trce: Shop.Cart[0]", "trace")
	// glog / klog.
	f("E1206 12:34:56.789012       1 main.go:42] sync failed", "error")
	f("W1206 12:34:56.789012       1 main.go:42] slow", "warning")
	f("I1206 12:34:56.789012       1 main.go:42] ok", "info")
	f("F1206 12:34:56.789012       1 main.go:42] dead", "critical")
	f("E12 not glog", "none")
	// logfmt anywhere.
	f(`time="2026-11-23T03:00:00Z" level=error msg="x"`, "error")
	f(`ts=2026-11-23T03:00:00Z caller=main.go:1 level=warn msg=x`, "warning")
	f(`level="info" msg=x`, "info")
	f(`lvl=dbug msg=x`, "debug")
	f(`msg="level=error inside a value" other=1`, "none")
	f(`severity=ERROR msg=x`, "error")
	// No level.
	f("", "none")
	f("GET /health 200", "none")
	f("2026-11-23 03:00:00 user info updated", "none")
	f("errors: 0", "none")
	f(`{"level":"error"}`, "none")
	f("\tat com.example.Main.main(Main.java:5)", "none")
	f("Traceback (most recent call last):", "none")
	f("informationally speaking", "none")
	f("Error: boom", "error")
	f("[2026-11-23 03:00:00 no closing bracket and info", "none")
}

func BenchmarkDetectLevel(b *testing.B) {
	lines := [][]byte{
		[]byte("2026-11-23 03:00:00.123 ERROR [main] c.e.App - failed to process order 12345"),
		[]byte(`10.0.0.1 - - [23/Nov/2026:03:00:00 +0000] "GET /api/v1/items HTTP/1.1" 200 512 "-" "curl/8.0"`),
		[]byte(`time="2026-11-23T03:00:00Z" level=info msg="request done" path=/api status=200 dur=1.2ms`),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		detectLevel(lines[i%len(lines)])
	}
}
