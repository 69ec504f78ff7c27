package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const (
	sentMetric = "tailgate_sink_records_total"
	sinkName   = "local"
)

// sentRecords scrapes url and returns tailgate_sink_records_total{sink="local",result="sent"}
// (0 while the series does not exist yet).
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
	for _, m := range mf.Metric {
		var sink, result string
		for _, l := range m.Label {
			switch l.GetName() {
			case "sink":
				sink = l.GetValue()
			case "result":
				result = l.GetValue()
			}
		}
		if sink == sinkName && result == "sent" {
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), nil
			case m.Untyped != nil:
				return m.Untyped.GetValue(), nil
			}
		}
	}
	return 0, nil
}
