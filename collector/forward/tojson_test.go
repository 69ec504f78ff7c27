package forward

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

func TestMsgpackToJSON(t *testing.T) {
	f := func(name string, value []byte, want string) {
		t.Helper()
		rec := append(msgp.AppendMapHeader(nil, 1), msgp.AppendString(nil, "k")...)
		rec = append(rec, value...)
		got, rest, _, err := appendRecordJSON(nil, rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(rest) != 0 {
			t.Errorf("%s: %d bytes left", name, len(rest))
		}
		if string(got) != `{"k":`+want+`}` {
			t.Errorf("%s: got %s, want {\"k\":%s}", name, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: invalid JSON %s", name, got)
		}
	}
	f("string", msgp.AppendString(nil, "a \"q\"\n\x01é"), `"a \"q\"\n\u0001é"`)
	f("invalid utf-8 string", msgp.AppendStringFromBytes(nil, []byte{'a', 0xff}), `"a\ufffd"`)
	f("utf-8 bin", msgp.AppendBytes(nil, []byte("text")), `"text"`)
	f("binary bin", msgp.AppendBytes(nil, []byte{0xff, 0x00, 0x01}), `"/wAB"`)
	f("int", msgp.AppendInt64(nil, -42), `-42`)
	f("uint64", msgp.AppendUint64(nil, math.MaxUint64), `18446744073709551615`)
	f("float64", msgp.AppendFloat64(nil, 1.5), `1.5`)
	f("float32", msgp.AppendFloat32(nil, 0.1), `0.1`)
	f("big float", msgp.AppendFloat64(nil, 1e21), `1e+21`)
	f("NaN", msgp.AppendFloat64(nil, math.NaN()), `null`)
	f("Inf", msgp.AppendFloat64(nil, math.Inf(-1)), `null`)
	f("bools and nil", append(msgp.AppendBool(msgp.AppendBool(msgp.AppendArrayHeader(nil, 3), true), false), msgp.AppendNil(nil)...), `[true,false,null]`)
	f("nested map", record(nil, "a", msgp.Raw(record(nil, "b", []any{int64(1), "x"}))), `{"a":{"b":[1,"x"]}}`)
	f("int key", append(msgp.AppendInt(msgp.AppendMapHeader(nil, 1), 7), msgp.AppendString(nil, "v")...), `{"7":"v"}`)
	f("event time", eventTime(nil, t0), `"2026-11-23T03:00:00.123456789Z"`)
	f("other ext", []byte{0xd4, 0x09, 0x41}, `{"ext":9,"data":"QQ=="}`)
	f("empty map", msgp.AppendMapHeader(nil, 0), `{}`)
}

func TestMsgpackToJSONErrors(t *testing.T) {
	f := func(name string, rec []byte) {
		t.Helper()
		if _, _, _, err := appendRecordJSON(nil, rec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	f("not a map", msgp.AppendString(nil, "x"))
	f("truncated", record(nil, "a", "bcdef")[:5])
	f("map key", append(msgp.AppendMapHeader(msgp.AppendMapHeader(nil, 1), 0), 1))
	f("never used byte", append(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "k"), 0xc1))
	deep := msgp.AppendMapHeader(nil, 1)
	deep = msgp.AppendString(deep, "k")
	for range maxDepth + 5 {
		deep = msgp.AppendArrayHeader(deep, 1)
	}
	f("too deep", msgp.AppendNil(deep))
}

func jsonValid(b []byte) bool { return json.Valid(b) }
