package collector

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"k8s.io/apimachinery/pkg/labels"
)

// valueError is a bad scalar value, with the line of its node.
type valueError struct {
	line int
	msg  string
}

func (e *valueError) Error() string { return e.msg }

// scalar reads node as a string and turns parse failures into errors that carry its line.
func scalar(node ast.Node, parse func(string) error) error {
	line := 0
	if tok := node.GetToken(); tok != nil && tok.Position != nil {
		line = tok.Position.Line
	}
	var s string
	if err := yaml.NodeToValue(node, &s); err != nil {
		return &valueError{line: line, msg: fmt.Sprintf("want a string value: %v", err)}
	}
	if err := parse(s); err != nil {
		return &valueError{line: line, msg: err.Error()}
	}
	return nil
}

func (d *Duration) UnmarshalYAML(node ast.Node) error { return scalar(node, d.parse) }

func (d *Duration) parse(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads "200ms", "10s", "5m": a non-negative Go duration. time.ParseDuration
// already refuses overflow ("invalid duration"); the sign is checked here.
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (want e.g. 200ms, 10s, 5m)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return v, nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (s *SyncMode) UnmarshalYAML(node ast.Node) error { return scalar(node, s.parse) }

func (s *SyncMode) parse(str string) error {
	if str == "always" {
		*s = 0
		return nil
	}
	v, err := ParseDuration(str)
	if err != nil || v <= 0 {
		return fmt.Errorf("bad sync %q (want \"always\" or a positive duration such as 200ms)", str)
	}
	*s = SyncMode(v)
	return nil
}

// D returns the interval; 0 means fsync every append.
func (s SyncMode) D() time.Duration { return time.Duration(s) }

func (s *Size) UnmarshalYAML(node ast.Node) error { return scalar(node, s.parse) }

func (s *Size) parse(str string) error {
	v, err := ParseSize(str)
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

// ParseSize reads "64MiB", "2GiB", "256KiB", "10MB" or a plain byte count.
func ParseSize(s string) (int64, error) {
	str := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			str = strings.TrimSpace(strings.TrimSuffix(str, u.suffix))
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(str, 64)
	// ParseFloat takes "NaN", "Inf" and hex floats; a size is a plain finite number.
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) || n < 0 || strings.ContainsAny(str, "xXpPnNiI_") {
		return 0, fmt.Errorf("bad size %q (want e.g. 64MiB, 2GiB, 256KiB)", s)
	}
	v := n * float64(mult)
	if v >= 1<<62 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

func (l *LabelMatch) UnmarshalYAML(node ast.Node) error {
	line := 0
	if tok := node.GetToken(); tok != nil && tok.Position != nil {
		line = tok.Position.Line
	}
	var m map[string]string
	if err := yaml.NodeToValue(node, &m); err == nil {
		l.Globs, l.Selector = m, ""
		return nil
	}
	var sel string
	if err := yaml.NodeToValue(node, &sel); err != nil {
		return &valueError{line: line, msg: "labels: want a map of label globs or a selector string (app=cart,tier in (web,api))"}
	}
	if _, err := labels.Parse(sel); err != nil {
		return &valueError{line: line, msg: fmt.Sprintf("labels: bad selector %q: %v", sel, err)}
	}
	l.Globs, l.Selector = nil, sel
	return nil
}
