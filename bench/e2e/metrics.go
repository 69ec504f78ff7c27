package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const sentMetric = "tailgate_sink_records_total"

// sentRecords scrapes url and returns the sum of tailgate_sink_records_total{result="sent"}
// over the sinks (0 while the series does not exist yet): every record goes to one sink.
func sentRecords(ctx context.Context, client *http.Client, url string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: status %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	mf := mfs[sentMetric]
	if mf == nil {
		return 0, nil
	}
	var sum float64
	for _, m := range mf.Metric {
		for _, l := range m.Label {
			if l.GetName() == "result" && l.GetValue() == "sent" {
				switch {
				case m.Counter != nil:
					sum += m.Counter.GetValue()
				case m.Untyped != nil:
					sum += m.Untyped.GetValue()
				}
			}
		}
	}
	return sum, nil
}
