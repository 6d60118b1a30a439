// Package subscriberprom exports a subscriber's state as Prometheus metrics,
// for pods that want them without writing the collector themselves. It is
// a separate package so that a pod embedding subscriber pulls in the
// Prometheus client only if it imports this one.
//
//	reg.MustRegister(subscriberprom.New(sub))
package subscriberprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/subscriber"
)

// Source is what the collector reads: *subscriber.Subscriber.
type Source interface {
	Current() *betasync.Snapshot
	Ready() bool
	Stats() subscriber.Stats
}

// Collector reads the subscriber at each scrape: one atomic load for the
// version, and its counters. Safe for concurrent use.
type Collector struct {
	src Source

	version, ready, appliedAt *prometheus.Desc
	applied, stale, invalid   *prometheus.Desc
	resyncs, corrected        *prometheus.Desc
}

// New returns a collector for src. Register it on the pod's registry.
func New(src Source) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("betasync_subscriber_"+name, help, nil, nil)
	}
	return &Collector{
		src:       src,
		version:   d("config_version", "Mapping version this pod serves (0: the embedded default)."),
		ready:     d("ready", "1 once a version from the bus is in use."),
		appliedAt: d("applied_timestamp_seconds", "Unix time the version in use was applied."),
		applied:   d("applied_total", "Versions swapped in."),
		stale:     d("stale_events_total", "Events at or below the version in use (routine)."),
		invalid:   d("invalid_events_total", "Events that did not decode, validate or match their hash."),
		resyncs:   d("resyncs_total", "Re-reads of the version stored in KV."),
		corrected: d("corrected_total", "Returns to KV's version from one KV does not hold."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.version, c.ready, c.appliedAt, c.applied, c.stale, c.invalid, c.resyncs, c.corrected} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	cur := c.src.Current()
	st := c.src.Stats()
	ready := 0.0
	if c.src.Ready() {
		ready = 1
	}
	appliedAt := 0.0
	if !cur.AppliedAt.IsZero() {
		appliedAt = float64(cur.AppliedAt.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(cur.Version))
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready)
	ch <- prometheus.MustNewConstMetric(c.appliedAt, prometheus.GaugeValue, appliedAt)
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.CounterValue, float64(st.Applied))
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.CounterValue, float64(st.Stale))
	ch <- prometheus.MustNewConstMetric(c.invalid, prometheus.CounterValue, float64(st.Invalid))
	ch <- prometheus.MustNewConstMetric(c.resyncs, prometheus.CounterValue, float64(st.Resyncs))
	ch <- prometheus.MustNewConstMetric(c.corrected, prometheus.CounterValue, float64(st.Corrected))
}
