package promshare

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"sink"})
}

func TestRegisterShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := Register(reg, newVec())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, newVec())
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("the second registration got a family of its own, not the registered one")
	}
	a.WithLabelValues("one").Add(2)
	b.WithLabelValues("two").Inc()
	b.WithLabelValues("one").Inc() // a sink rebuilt by a reload goes on counting
	if n := testutil.ToFloat64(a.WithLabelValues("one")); n != 3 {
		t.Errorf("one = %v, want 3", n)
	}
	if n := testutil.CollectAndCount(reg); n != 2 {
		t.Errorf("%d series registered, want 2", n)
	}
}

func TestRegisterConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := Register(reg, newVec()); err != nil {
		t.Fatal(err)
	}
	// The same name with other labels is a conflict, not a share.
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"sink", "code"})
	if _, err := Register(reg, other); err == nil {
		t.Fatal("a family with the same name and other labels was accepted")
	}
	// A gauge of an already registered description is not the counter registered there.
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	if _, err := Register(reg, g); err != nil {
		t.Fatal(err)
	}
	if _, err := Register[prometheus.Gauge](reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})); err != nil {
		t.Fatalf("same gauge again: %v", err)
	}
}

func TestRegisterNil(t *testing.T) {
	v := newVec()
	got, err := Register(nil, v)
	if err != nil || got != v {
		t.Fatalf("nil registry: %v, %v", got, err)
	}
}
