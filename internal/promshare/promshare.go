// Package promshare registers metric families that several owners share: two sinks of one
// type on one registry, or a sink and the one a config reload builds in its place. The first
// registration wins and later ones get the family already registered, so each sink keeps its
// own series (by its sink label) and a rebuilt sink's counters go on instead of restarting at
// zero.
package promshare

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the collector of the same description that is
// registered there already. A nil reg registers nothing and returns c (the metrics still
// count, unseen).
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
