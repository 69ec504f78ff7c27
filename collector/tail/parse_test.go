package tail

import (
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

func TestParseTime(t *testing.T) {
	// shared remembers the previous case's second: it must answer exactly as a fresh parse.
	var shared timeParser
	f := func(in string, want string) {
		t.Helper()
		got, ok := parseTime([]byte(in))
		if sgot, sok := shared.parse([]byte(in)); sgot != got || sok != ok {
			t.Errorf("shared parser: %q = %d %v, fresh %d %v", in, sgot, sok, got, ok)
		}
		if want == "" {
			if ok {
				t.Errorf("parseTime(%q) = %d, want failure", in, got)
			}
			return
		}
		w, err := time.Parse(time.RFC3339Nano, want)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || got != w.UnixNano() {
			t.Errorf("parseTime(%q) = %d %v, want %d", in, got, ok, w.UnixNano())
		}
	}
	f("2016-10-06T00:17:09.669794202Z", "2016-10-06T00:17:09.669794202Z")
	f("2016-10-06T00:17:09Z", "2016-10-06T00:17:09Z")
	f("2016-10-06T00:17:09+02:00", "2016-10-06T00:17:09+02:00") // same second, another zone
	f("2016-10-06T00:17:09.x", "")                              // same second, bad fraction
	f("2016-10-06T00:17:09.1Z", "2016-10-06T00:17:09.1Z")
	f("2016-10-06T00:17:10.1Z", "2016-10-06T00:17:10.1Z")
	f("2016-10-06T09:17:09.5+09:00", "2016-10-06T09:17:09.5+09:00")
	f("2016-10-05T20:17:09.123-04:30", "2016-10-05T20:17:09.123-04:30")
	f("2024-02-29T23:59:59.999999999Z", "2024-02-29T23:59:59.999999999Z")
	f("1969-12-31T23:59:59.1Z", "1969-12-31T23:59:59.1Z")
	f("2016-10-06T00:17:09.6697942021234Z", "2016-10-06T00:17:09.669794202Z") // extra digits ignored
	f("2023-02-29T00:00:00Z", "")
	f("2016-13-06T00:17:09Z", "")
	f("2016-10-06T24:17:09Z", "")
	f("2016-10-06T00:17:09", "")
	f("2016-10-06T00:17:09.Z", "")
	f("2016-10-06T00:17:09+0900", "")
	f("2016-10-06T00:17:09Zx", "")
	f("garbage", "")
}

func TestParseCRI(t *testing.T) {
	type want struct {
		stream  collector.Stream
		partial bool
		msg     string
	}
	f := func(line string, ok bool, w want) {
		t.Helper()
		c, got := parseCRI([]byte(line))
		if got != ok {
			t.Fatalf("parseCRI(%q) ok = %v, want %v", line, got, ok)
		}
		if !ok {
			return
		}
		if c.Stream != w.stream || c.Partial != w.partial || string(c.Message) != w.msg {
			t.Errorf("parseCRI(%q) = %v %v %q, want %v %v %q", line, c.Stream, c.Partial, c.Message, w.stream, w.partial, w.msg)
		}
		if c.Time == 0 {
			t.Errorf("parseCRI(%q): no time", line)
		}
	}
	f("2016-10-06T00:17:09.669794202Z stdout F the message", true, want{collector.StreamStdout, false, "the message"})
	f("2016-10-06T00:17:09.669794202Z stderr P part one ", true, want{collector.StreamStderr, true, "part one "})
	f("2016-10-06T00:17:09.669794202+09:00 stdout F x", true, want{collector.StreamStdout, false, "x"})
	f("2016-10-06T00:17:09.669794202Z stdout F ", true, want{collector.StreamStdout, false, ""})
	f("2016-10-06T00:17:09.669794202Z stdout F", true, want{collector.StreamStdout, false, ""})
	f("2016-10-06T00:17:09.669794202Z stdout F:x y", true, want{collector.StreamStdout, false, "y"})
	f("2016-10-06T00:17:09.669794202Z stdout F  two spaces", true, want{collector.StreamStdout, false, " two spaces"})
	f("2016-10-06T00:17:09.669794202Z stdout F tab\there\r", true, want{collector.StreamStdout, false, "tab\there\r"})
	f("2016-10-06T00:17:09.669794202Z stdin F x", false, want{})
	f("2016-10-06T00:17:09.669794202Z stdout X x", false, want{})
	f("2016-10-06T00:17:09.669794202Z stdout", false, want{})
	f("not-a-time stdout F x", false, want{})
	f("", false, want{})
	f("{\"log\":\"x\"}", false, want{})
}

func TestParseDocker(t *testing.T) {
	type want struct {
		stream  collector.Stream
		partial bool
		msg     string
	}
	var p dockerParser
	f := func(line string, ok bool, w want) {
		t.Helper()
		c, got := p.parse([]byte(line))
		if got != ok {
			t.Fatalf("parse(%q) ok = %v, want %v", line, got, ok)
		}
		if !ok {
			return
		}
		if c.Stream != w.stream || c.Partial != w.partial || string(c.Message) != w.msg {
			t.Errorf("parse(%q) = %v %v %q, want %v %v %q", line, c.Stream, c.Partial, c.Message, w.stream, w.partial, w.msg)
		}
	}
	f(`{"log":"msg\n","stream":"stderr","time":"2019-01-01T11:11:11.111111111Z"}`, true, want{collector.StreamStderr, false, "msg"})
	f(`{"stream":"stdout","time":"2019-01-01T11:11:11.111111111Z","log":"part"}`, true, want{collector.StreamStdout, true, "part"})
	f(`{"log":"a\"b\\c\/d\b\f\n\r\te\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, "a\"b\\c/d\b\f\n\r\te"})
	f(`{"log":"caf\u00e9 \u65e5\u672c \ud83d\ude00\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, "café 日本 😀"})
	f(`{"log":"lone \ud83d x\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, "lone \uFFFD x"})
	f(`{"log":"lone \ude00\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, "lone \uFFFD"})
	f(`{"log":"pair then \ud83d\u0041\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, "pair then \uFFFDA"})
	f(`{"log":"x\n","attrs":{"tag":"a","n":[1,2.5e3,-0,true,false,null,{"k":"v"}]},"stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, "x"})
	f(` { "log" : "spaced\n" , "stream" : "stdout" , "time" : "2019-01-01T11:11:11Z" } `, true, want{collector.StreamStdout, false, "spaced"})
	f(`{"log":"no time\n","stream":"stdout"}`, true, want{collector.StreamStdout, false, "no time"})
	f(`{"log":"\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, ""})
	f(`{"log":"raw `+"\xff\xfe"+` bytes\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, true, want{collector.StreamStdout, false, "raw \xff\xfe bytes"})
	f(`{"stream":"stdout","time":"2019-01-01T11:11:11Z"}`, false, want{})
	f(`{"log":"x\n","stream":"stdout","time":"2019-01-01T11:11:11Z"`, false, want{})
	f(`{"log":"x\n","stream":"stdout","time":"yesterday"}`, false, want{})
	f(`{"log":"bad \q escape"}`, false, want{})
	f(`{"log":"bad \u12"}`, false, want{})
	f(`{"log":"x\n"} trailing`, false, want{})
	f(`{"log":"x\n",}`, false, want{})
	f(`{"log":1}`, false, want{})
	f(`{}`, false, want{})
	f(`2016-10-06T00:17:09.669794202Z stdout F x`, false, want{})
	f(``, false, want{})
}

func TestIsJSONObject(t *testing.T) {
	f := func(in string, want bool) {
		t.Helper()
		if got := isJSONObject([]byte(in)); got != want {
			t.Errorf("isJSONObject(%q) = %v, want %v", in, got, want)
		}
	}
	f(`{}`, true)
	f(` {"a":1,"b":[true,null,"x\u00e9"],"c":{"d":-1.5e-3}} `, true)
	f(`{"a":01}`, false)
	f(`{"a":1,}`, false)
	f(`{"a" 1}`, false)
	f(`[1]`, false)
	f(`{"a":"`+"\x01"+`"}`, false)
	f(`{"a":1}{}`, false)
	f(`plain text`, false)
	deep := ""
	for range 100 {
		deep += `{"a":`
	}
	f(deep+"1"+deep, false)
}

func TestDetectFormat(t *testing.T) {
	f := func(in string, want format) {
		t.Helper()
		if got := detectFormat([]byte(in)); got != want {
			t.Errorf("detectFormat(%q) = %v, want %v", in, got, want)
		}
	}
	f(`{"log":"x"}`, formatDocker)
	f(`  {"log":"x"}`, formatDocker)
	f(`2016-10-06T00:17:09.669794202Z stdout F x`, formatCRI)
	f(``, formatUnknown)
}

func TestKubeFromPath(t *testing.T) {
	f := func(logical, real string, want collector.Kube) {
		t.Helper()
		want.Node = "n1"
		got := kubeFromPath(logical, real, "n1")
		if got.Namespace != want.Namespace || got.Pod != want.Pod || got.PodUID != want.PodUID ||
			got.Container != want.Container || got.Node != want.Node {
			t.Errorf("kubeFromPath(%q, %q) = %+v, want %+v", logical, real, *got, want)
		}
	}
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f("/var/log/containers/cart-7d9f_shop_app-"+id+".log", "/var/log/pods/shop_cart-7d9f_1f2e-uid/app/0.log",
		collector.Kube{Namespace: "shop", Pod: "cart-7d9f", PodUID: "1f2e-uid", Container: "app"})
	f("/var/log/containers/cart-7d9f_shop_app-"+id+".log", "/var/lib/docker/containers/"+id+"/"+id+"-json.log",
		collector.Kube{Namespace: "shop", Pod: "cart-7d9f", Container: "app"})
	f("/var/log/pods/kube-system_dns-1_u-1/coredns/3.log", "/var/log/pods/kube-system_dns-1_u-1/coredns/3.log",
		collector.Kube{Namespace: "kube-system", Pod: "dns-1", PodUID: "u-1", Container: "coredns"})
	f("/tmp/app.log", "/tmp/app.log", collector.Kube{})
}

func TestStateRoundTrip(t *testing.T) {
	in := savedFile{id: fileID{dev: 0x803, ino: 123456}, key: 0xdeadbeefcafef00d, gen: 3, offset: 1 << 40,
		skip: 1<<40 + 77, fpLen: 64, fp: 42, path: "/var/log/pods/a_b_c/d/0.log", logical: "/var/log/containers/x.log",
		hold: [2]int64{1 << 40, 1<<40 + 30}, mstate: [2]multiline.State{0, 3}}
	got, err := decodeSaved(in.appendBinary(nil))
	if err != nil || got != in {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, in)
	}
	// A version 1 value (before multiline) reads as held from offset for both streams.
	v1 := in
	v1.hold, v1.mstate = [2]int64{in.offset, in.offset}, [2]multiline.State{}
	enc1 := v1.appendBinary(nil)
	enc1[0] = stateVersionV1
	enc1 = enc1[:len(enc1)-4] // no hold / mstate pairs
	got, err = decodeSaved(enc1)
	if want := (savedFile{id: in.id, key: in.key, gen: in.gen, offset: in.offset, skip: in.skip, fpLen: in.fpLen, fp: in.fp,
		path: in.path, logical: in.logical, hold: [2]int64{in.offset, in.offset}}); err != nil || got != want {
		t.Fatalf("v1: %+v %v, want %+v", got, err, want)
	}
	bad := in
	bad.hold[1] = bad.skip + 1 // a hold past skip is corrupt
	if _, err := decodeSaved(bad.appendBinary(nil)); err == nil {
		t.Error("hold past skip accepted")
	}
	enc := in.appendBinary(nil)
	for i := range enc {
		if _, err := decodeSaved(enc[:i]); err == nil {
			t.Errorf("decodeSaved of %d of %d bytes succeeded", i, len(enc))
		}
	}
	if k := stateKey(in.id); k != "803:1e240" {
		t.Errorf("stateKey = %q", k)
	}
}
