package exporter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// exposition is what Prometheus' own text parser read from one scrape.
type exposition struct {
	samples map[string]float64 // labels.String() (with __name__) -> value
	help    map[string][]string
	types   map[string][]model.MetricType
}

// parseProm parses b with the scraper's parser (model/textparse) and fails on any error.
func parseProm(t testing.TB, b []byte) exposition {
	t.Helper()
	e, err := parsePromErr(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return e
}

// parsePromErr parses a whole exposition; safe to call from any goroutine.
func parsePromErr(b []byte) (exposition, error) {
	e := exposition{samples: map[string]float64{}, help: map[string][]string{}, types: map[string][]model.MetricType{}}
	p, err := textparse.New(b, ContentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return e, fmt.Errorf("textparse.New: %w", err)
	}
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			return e, nil
		}
		if err != nil {
			return e, fmt.Errorf("textparse: %w", err)
		}
		switch et {
		case textparse.EntryHelp:
			name, text := p.Help()
			if len(e.help[string(name)]) > 0 {
				return e, fmt.Errorf("HELP of %s twice", name)
			}
			e.help[string(name)] = append(e.help[string(name)], string(text))
		case textparse.EntryType:
			name, typ := p.Type()
			if len(e.types[string(name)]) > 0 {
				return e, fmt.Errorf("TYPE of %s twice", name)
			}
			e.types[string(name)] = append(e.types[string(name)], typ)
		case textparse.EntrySeries:
			_, _, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			key := l.String()
			if _, dup := e.samples[key]; dup {
				return e, fmt.Errorf("series %s exposed twice", key)
			}
			e.samples[key] = v
		}
	}
}

// parseExpfmt parses b with client_golang's parser (common/expfmt), which rejects a family
// whose HELP or TYPE appears twice or whose samples are not grouped.
func parseExpfmt(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("expfmt: %v\n%s", err, b)
	}
	return mfs
}

// seriesKey is how parseProm names a sample: labels sorted by name, __name__ first.
func seriesKey(name string, kv ...string) string {
	return labels.FromStrings(append([]string{"__name__", name}, kv...)...).String()
}

func podKey(name, ns, pod, ctr, stream string, extra ...string) string {
	return seriesKey(name, append([]string{"namespace", ns, "pod", pod, "container", ctr, "stream", stream}, extra...)...)
}

func scrape(t testing.TB, w io.WriterTo) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := w.WriteTo(&b)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(b.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, b.Len())
	}
	return b.Bytes()
}
