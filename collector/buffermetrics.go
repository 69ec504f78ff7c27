package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/buffer"
)

// bufferCollector exposes the buffer's figures at scrape time (one Stats call per scrape).
type bufferCollector struct {
	buf                                       *buffer.Buffer
	bytes, segments, oldest, lag, dropped     *prometheus.Desc
	corruptFrames, truncatedBytes, badCursors *prometheus.Desc
	syncs                                     *prometheus.Desc
}

// NewBufferCollector returns the collector of tailgate_buffer_* metrics for buf.
func NewBufferCollector(buf *buffer.Buffer) prometheus.Collector {
	return &bufferCollector{
		buf:            buf,
		bytes:          prometheus.NewDesc("tailgate_buffer_bytes", "Bytes of buffer segments on disk.", nil, nil),
		segments:       prometheus.NewDesc("tailgate_buffer_segments", "Buffer segment files on disk.", nil, nil),
		oldest:         prometheus.NewDesc("tailgate_buffer_oldest_age_seconds", "Age of the oldest buffered batch a sink has not acknowledged; 0 when caught up.", []string{"sink"}, nil),
		lag:            prometheus.NewDesc("tailgate_buffer_lag_bytes", "Buffer bytes a sink has not acknowledged.", []string{"sink"}, nil),
		dropped:        prometheus.NewDesc("tailgate_buffer_dropped_records_total", "Records drop_oldest deleted before a sink acknowledged them.", []string{"sink"}, nil),
		corruptFrames:  prometheus.NewDesc("tailgate_buffer_corrupt_frames_total", "Damaged buffer frames skipped.", nil, nil),
		truncatedBytes: prometheus.NewDesc("tailgate_buffer_truncated_bytes_total", "Torn-tail bytes truncated when the buffer was opened.", nil, nil),
		badCursors:     prometheus.NewDesc("tailgate_buffer_corrupt_cursors_total", "Cursor files found missing or damaged at start (their sinks restarted at the oldest frame).", nil, nil),
		syncs:          prometheus.NewDesc("tailgate_buffer_syncs_total", "Buffer group commits (one fdatasync pass each), by what started them: interval (the sync setting) or waiter (a forward ack waiting for durability, or sync: always).", []string{"trigger"}, nil),
	}
}

func (c *bufferCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.segments, c.oldest, c.lag, c.dropped, c.corruptFrames, c.truncatedBytes, c.badCursors, c.syncs} {
		ch <- d
	}
}

func (c *bufferCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.buf.Stats()
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(c.segments, prometheus.GaugeValue, float64(st.Segments))
	corrupt := st.CorruptFrames
	for _, r := range st.Readers {
		age := 0.0
		if !r.Oldest.IsZero() {
			age = max(0, time.Since(r.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, r.Name)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(r.LagBytes), r.Name)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(r.DroppedRecords), r.Name)
		corrupt += r.CorruptFrames
	}
	ch <- prometheus.MustNewConstMetric(c.corruptFrames, prometheus.CounterValue, float64(corrupt))
	ch <- prometheus.MustNewConstMetric(c.truncatedBytes, prometheus.CounterValue, float64(st.TruncatedBytes))
	ch <- prometheus.MustNewConstMetric(c.badCursors, prometheus.CounterValue, float64(st.CorruptCursors))
	ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(st.IntervalSyncs), buffer.TriggerInterval)
	ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(st.WaiterSyncs), buffer.TriggerWaiter)
}
