package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var out bytes.Buffer
	w := New(slog.New(slog.NewTextHandler(&out, nil)), time.Hour)
	for i := 0; i < 5; i++ {
		w.Warn("a", "bad frame", "i", i)
	}
	w.Warn("b", "bad file")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "i=0") || !strings.Contains(lines[1], "bad file") {
		t.Fatalf("logged %q, want the first of each key only", lines)
	}
	w.interval = 0
	w.Warn("a", "bad frame")
	if !strings.Contains(out.String(), "suppressed=4") {
		t.Fatalf("the next line does not count the 4 suppressed: %s", out.String())
	}
}
