package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// writeFile writes one container's log until its byte budget is spent (the last record may
// overshoot), then its symlink, and fills f's totals.
func writeFile(c config, f *fileStat) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	out, err := os.Create(f.Path)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	w := bufio.NewWriterSize(out, 1<<20)
	r := rand.New(rand.NewPCG(f.seed, uint64(c.Seed)))
	ts := base.Add(time.Duration(r.IntN(1e9)))
	var payload, line []byte
	var trace [][]byte
	for f.Bytes < f.budget {
		ts = ts.Add(time.Duration(20_000 + r.IntN(2_000_000)))
		if c.TraceFrac > 0 && r.Float64() < c.TraceFrac {
			// A plain-text stack trace on stderr, one line per frame, as a runtime prints an
			// uncaught exception: a multiline stage joins it into one record.
			trace = appendTrace(trace[:0], r)
			for _, l := range trace {
				line = appendLine(line[:0], c.Format, ts, "stderr", l, true)
				if _, err := w.Write(line); err != nil {
					return fmt.Errorf("file %s: %w", f.Path, err)
				}
				f.Bytes += int64(len(line))
				f.Lines++
				f.Records++
			}
			f.Traces++
			f.TraceLines += int64(len(trace))
			f.StderrRecords += int64(len(trace))
			continue
		}
		var level string
		long := r.Float64() < c.LongFrac
		if long {
			// 2 or 3 chunks: strictly longer than one chunk.
			n := c.Chunk + 1 + r.IntN(2*c.Chunk-1)
			payload, level = appendLongPayload(payload[:0], r, ts, n), "error"
			f.LongRecords++
		} else {
			target := c.PayloadBytes*7/10 + r.IntN(c.PayloadBytes*6/10+1)
			payload, level = appendPayload(payload[:0], r, ts, target)
		}
		stream := "stdout"
		if r.Float64() < c.StderrFrac || (level == "error" && r.IntN(2) == 0) {
			stream = "stderr"
			f.StderrRecords++
		}
		for rest := payload; ; {
			chunk, last := rest, true
			if len(rest) > c.Chunk {
				chunk, last = rest[:c.Chunk], false
			}
			line = appendLine(line[:0], c.Format, ts, stream, chunk, last)
			if _, err := w.Write(line); err != nil {
				return fmt.Errorf("file %s: %w", f.Path, err)
			}
			f.Bytes += int64(len(line))
			f.Lines++
			if last {
				break
			}
			f.Partials++
			rest = rest[c.Chunk:]
		}
		f.Records++
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	if err := os.Remove(f.Symlink); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("symlink %s: %w", f.Symlink, err)
	}
	if err := os.Symlink(f.Path, f.Symlink); err != nil {
		return fmt.Errorf("symlink %s: %w", f.Symlink, err)
	}
	return nil
}

// appendLine appends one physical line as the runtime writes it, newline included.
//
//	cri:    <RFC3339Nano> <stream> <P|F> <chunk>
//	docker: {"log":"<chunk, plus \n when last>","stream":"<stream>","time":"<RFC3339Nano>"}
func appendLine(b []byte, format string, ts time.Time, stream string, chunk []byte, last bool) []byte {
	const layout = "2006-01-02T15:04:05.000000000Z07:00"
	if format == "cri" {
		b = ts.AppendFormat(b, layout)
		b = append(b, ' ')
		b = append(b, stream...)
		if last {
			b = append(b, " F "...)
		} else {
			b = append(b, " P "...)
		}
		b = append(b, chunk...)
		return append(b, '\n')
	}
	b = append(b, `{"log":"`...)
	b = appendJSONStringBody(b, chunk)
	if last {
		b = append(b, `\n`...)
	}
	b = append(b, `","stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = ts.AppendFormat(b, layout)
	return append(b, "\"}\n"...)
}

// appendJSONStringBody appends s escaped for the inside of a JSON string, as dockerd does
// (its encoder also escapes <, > and & as \u003c...: a decoder reads both the same).
func appendJSONStringBody(b []byte, s []byte) []byte {
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}
