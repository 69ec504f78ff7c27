// Package exporter owns tailgate's Prometheus exposition: the HTTP handler for /metrics and the
// per-pod families (log throughput now, pod resources later) whose series can number in the
// hundreds of thousands.
//
// Those families do not use client_golang: a series' label text is rendered once, when the
// series is born; its values live in atomics that the hot path bumps without locks or
// allocation; and a scrape streams every series through a reused buffer, so its cost is
// O(series) with no per-series allocation. A series whose last reference is released stays for
// exactly one more scrape, so its final values are seen, and is removed by that scrape.
//
// The package never registers anything globally and never blocks the hot path on a scrape.
package exporter
