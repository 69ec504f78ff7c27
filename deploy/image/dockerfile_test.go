package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileMatchesTheBuilder: no Docker daemon runs here, so the Dockerfile is checked
// against this builder: its final stage is scratch with the builder's filesystem, the same
// entrypoint and user, and every flag it passes to `go run .` exists.
func TestDockerfileMatchesTheBuilder(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Instructions with their continuation lines joined, comments dropped.
	var instrs []string
	cur := ""
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		if cur+trimmed != "" {
			instrs = append(instrs, cur+trimmed)
		}
		cur = ""
	}
	lastFrom := -1
	for i, in := range instrs {
		if strings.HasPrefix(in, "FROM ") {
			lastFrom = i
		}
	}
	if lastFrom < 0 || instrs[lastFrom] != "FROM scratch" {
		t.Fatalf("the final stage is not FROM scratch: %v", instrs)
	}
	final := strings.Join(instrs[lastFrom:], "\n")
	for _, want := range []string{
		"COPY --from=build /rootfs/ /",
		`ENTRYPOINT ["` + BinaryPath + `"]`,
		`CMD ["run"]`,
		"USER 65532:65532",
	} {
		if !strings.Contains(final, want) {
			t.Errorf("final stage lacks %q:\n%s", want, final)
		}
	}
	var goRun string
	for _, in := range instrs {
		if strings.Contains(in, "go run .") {
			goRun = in
		}
	}
	if goRun == "" || !strings.Contains(goRun, "-rootfs /rootfs") {
		t.Fatalf("no `go run . ... -rootfs /rootfs` in the build stage:\n%s", raw)
	}
	fs := newFlags(&options{}, io.Discard)
	for _, m := range regexp.MustCompile(` -([a-z]+) `).FindAllStringSubmatch(goRun[strings.Index(goRun, "go run ."):], -1) {
		if fs.Lookup(m[1]) == nil {
			t.Errorf("the Dockerfile passes -%s, which the builder does not have", m[1])
		}
	}
}
