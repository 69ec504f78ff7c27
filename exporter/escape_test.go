package exporter

import "testing"

func TestAppendLabelValue(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(appendLabelValue(nil, in)); got != want {
			t.Errorf("appendLabelValue(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("cart-7d9f", "cart-7d9f")
	f(`say "hi"`, `say \"hi\"`)
	f(`C:\logs\`, `C:\\logs\\`)
	f("two\nlines", `two\nlines`)
	f("tab\there\r", "tab\there\r")
	f("ünïcødé 日本", "ünïcødé 日本")
	f("bad\xffbyte", "bad\uFFFDbyte")
	f("cut\xe6\x97", "cut\uFFFD")
	f("\xff\xffa\xffb", "\uFFFDa\uFFFDb")
}

func TestAppendHelp(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(appendHelp(nil, in)); got != want {
			t.Errorf("appendHelp(%q) = %q, want %q", in, got, want)
		}
	}
	f("Log lines.", "Log lines.")
	f(`a "quote" stays`, `a "quote" stays`)
	f("a\\b\nc", `a\\b\nc`)
}

func TestAcceptsGzip(t *testing.T) {
	f := func(header string, want bool) {
		t.Helper()
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
	f("", false)
	f("gzip", true)
	f("GZIP", true)
	f("deflate, gzip;q=0.5", true)
	f("gzip;q=0", false)
	f("gzip; q=0.0", false)
	f("gzip;q=oops", false)
	f("*", true)
	f("identity", false)
	f("br, x-gzip", true)
}
