package exporter

import (
	"math"
	"strconv"
)

// family is one metric name exposed from a table: its HELP/TYPE header, rendered once, and
// how to append the sample lines of one series (zero, one, or several, e.g. one per reason).
// A family set for another kind of series (tail progress, disk, cgroups) is a slice of these
// over its own series type; the table does the rest.
type family[P any] struct {
	name    string
	header  []byte
	samples func(dst []byte, name string, s P) []byte
}

// Metric types of the text format.
const (
	typeCounter = "counter"
	typeGauge   = "gauge"
)

func newFamily[P any](name, help, typ string, samples func(dst []byte, name string, s P) []byte) family[P] {
	h := append([]byte("# HELP "), name...)
	h = append(h, ' ')
	h = appendHelp(h, help)
	h = append(h, "\n# TYPE "...)
	h = append(h, name...)
	h = append(h, ' ')
	h = append(h, typ...)
	h = append(h, '\n')
	return family[P]{name: name, header: h, samples: samples}
}

// headed is any series type: it embeds seriesHead.
type headed[P any] interface{ head() *seriesHead[P] }

// counterFamily exposes one integer counter per series.
func counterFamily[P headed[P]](name, help string, value func(P) uint64) family[P] {
	return newFamily(name, help, typeCounter, func(dst []byte, name string, s P) []byte {
		return appendUintSample(dst, name, s.head().labels, "", value(s))
	})
}

// floatCounterFamily exposes one float counter per series (seconds).
func floatCounterFamily[P headed[P]](name, help string, value func(P) float64) family[P] {
	return newFamily(name, help, typeCounter, func(dst []byte, name string, s P) []byte {
		return appendFloatSample(dst, name, s.head().labels, "", value(s))
	})
}

// gaugeFamily exposes one float gauge per series.
func gaugeFamily[P headed[P]](name, help string, value func(P) float64) family[P] {
	return newFamily(name, help, typeGauge, func(dst []byte, name string, s P) []byte {
		return appendFloatSample(dst, name, s.head().labels, "", value(s))
	})
}

// intGaugeFamily exposes one integer gauge per series.
func intGaugeFamily[P headed[P]](name, help string, value func(P) int64) family[P] {
	return newFamily(name, help, typeGauge, func(dst []byte, name string, s P) []byte {
		return appendIntSample(dst, name, s.head().labels, "", value(s))
	})
}

// appendSampleName appends `name{labels extra} ` where extra is pre-rendered `,k="v"` text.
func appendSampleName(dst []byte, name string, labels []byte, extra string) []byte {
	dst = append(dst, name...)
	if len(labels) > 0 || extra != "" {
		dst = append(dst, '{')
		dst = append(dst, labels...)
		if len(labels) == 0 && extra != "" {
			extra = extra[1:] // drop the leading comma
		}
		dst = append(dst, extra...)
		dst = append(dst, '}')
	}
	return append(dst, ' ')
}

func appendUintSample(dst []byte, name string, labels []byte, extra string, v uint64) []byte {
	dst = appendSampleName(dst, name, labels, extra)
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '\n')
}

func appendIntSample(dst []byte, name string, labels []byte, extra string, v int64) []byte {
	dst = appendSampleName(dst, name, labels, extra)
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '\n')
}

func appendFloatSample(dst []byte, name string, labels []byte, extra string, v float64) []byte {
	dst = appendSampleName(dst, name, labels, extra)
	switch {
	case math.IsNaN(v):
		dst = append(dst, "NaN"...)
	case math.IsInf(v, 1):
		dst = append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		dst = append(dst, "-Inf"...)
	default:
		dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
	}
	return append(dst, '\n')
}
