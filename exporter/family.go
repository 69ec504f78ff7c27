package exporter

import (
	"math"
	"strconv"
)

// family is one metric name exposed from a table: its HELP/TYPE header, rendered once, and
// how to append the sample lines of one series (zero, one, or several, e.g. one per reason).
// A family set for another kind of series (pod CPU, memory, restarts) is a slice of these
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

// counterFamily exposes one integer counter per series.
func counterFamily[P headed](name, help string, value func(P) uint64) family[P] {
	return newFamily(name, help, typeCounter, func(dst []byte, name string, s P) []byte {
		return appendUintSample(dst, name, s.head().labels, "", value(s))
	})
}

// gaugeFamily exposes one float gauge per series.
func gaugeFamily[P headed](name, help string, value func(P) float64) family[P] {
	return newFamily(name, help, typeGauge, func(dst []byte, name string, s P) []byte {
		return appendFloatSample(dst, name, s.head().labels, "", value(s))
	})
}

// appendSampleName appends `name{labels extra} ` where extra is pre-rendered `,k="v"` text.
func appendSampleName(dst []byte, name, labels, extra string) []byte {
	dst = append(dst, name...)
	if labels != "" || extra != "" {
		dst = append(dst, '{')
		dst = append(dst, labels...)
		if labels == "" && extra != "" {
			extra = extra[1:] // drop the leading comma
		}
		dst = append(dst, extra...)
		dst = append(dst, '}')
	}
	return append(dst, ' ')
}

func appendUintSample(dst []byte, name, labels, extra string, v uint64) []byte {
	dst = appendSampleName(dst, name, labels, extra)
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '\n')
}

func appendFloatSample(dst []byte, name, labels, extra string, v float64) []byte {
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
