// Package metrics defines betasync's Prometheus metrics on a registry of its
// own, and the handler that serves them.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every betasync metric. Its methods are safe for concurrent
// use; each consumer declares the few it needs as an interface.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	version     prometheus.Gauge
	leaseHolder prometheus.Gauge
	buildInfo   *prometheus.GaugeVec
	fetches     *prometheus.HistogramVec
	nextRun     prometheus.Gauge
	connected   atomic.Pointer[func() bool]
}

// Reload triggers and outcomes: every combination is a series from the
// start, at 0, so alerts on increase(...{outcome="error"}) work before the
// first error.
var (
	triggers = []string{"manual", "schedule", "startup"}
	outcomes = []string{"changed", "unchanged", "error"}
)

// New registers the metrics, with the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "betasync_http_requests_total",
			Help: "Admin API requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "betasync_http_request_duration_seconds",
			Help: "Admin API request latency by route.",
			// Up to a minute: a reload waits for the fetch (10s by default).
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "betasync_reloads_total",
			Help: "Reloads run by this replica, by trigger (manual, schedule, startup) and outcome (changed, unchanged, error).",
		}, []string{"trigger", "outcome"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "betasync_last_reload_success_timestamp_seconds",
			Help: "Unix time of this replica's last successful reload.",
		}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "betasync_config_version",
			Help: "Mapping version (KV revision) this replica serves; 0 is the embedded default.",
		}),
		leaseHolder: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "betasync_lease_holder",
			Help: "1 while this replica holds the worker lease and runs the schedule.",
		}),
	}
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "betasync_build_info",
		Help: "Always 1: the version, commit and Go version of this binary.",
	}, []string{"version", "commit", "goversion"})
	m.fetches = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "betasync_fetch_duration_seconds",
		Help:    "Duration of fetches of the upstream mapping, body included, by outcome (ok, not_modified, error).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"outcome"})
	m.nextRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "betasync_schedule_next_run_timestamp_seconds",
		Help: "Unix time of the next scheduled reload as this replica last wrote or read it; 0 when not scheduled.",
	})
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "betasync_nats_connected",
		Help: "1 while this replica is connected to NATS.",
	}, func() float64 {
		if f := m.connected.Load(); f != nil && (*f)() {
			return 1
		}
		return 0
	})
	for _, t := range triggers {
		for _, o := range outcomes {
			m.reloads.WithLabelValues(t, o)
		}
	}
	for _, o := range []string{"ok", "not_modified", "error"} {
		m.fetches.WithLabelValues(o)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.reloads, m.lastSuccess, m.version, m.leaseHolder,
		m.buildInfo, m.fetches, m.nextRun, connected,
	)
	return m
}

// SetBuildInfo sets betasync_build_info's labels.
func (m *Metrics) SetBuildInfo(version, commit, goVersion string) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version, commit, goVersion).Set(1)
}

// WatchNATS makes betasync_nats_connected report connected() at each scrape.
func (m *Metrics) WatchNATS(connected func() bool) { m.connected.Store(&connected) }

// FetchFinished observes one fetch of the upstream mapping.
func (m *Metrics) FetchFinished(outcome string, d time.Duration) {
	m.fetches.WithLabelValues(outcome).Observe(d.Seconds())
}

// ScheduleNext records the next scheduled run; nil when not scheduled.
func (m *Metrics) ScheduleNext(next *time.Time) {
	if next == nil {
		m.nextRun.Set(0)
		return
	}
	m.nextRun.Set(float64(next.UnixNano()) / 1e9)
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest counts an admin API request.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// ReloadFinished counts a reload; a success also sets the last-success time.
func (m *Metrics) ReloadFinished(trigger, outcome string, at time.Time) {
	m.reloads.WithLabelValues(trigger, outcome).Inc()
	if outcome != "error" {
		m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	}
}

// LeaseHeld sets the lease holder flag.
func (m *Metrics) LeaseHeld(held bool) {
	if held {
		m.leaseHolder.Set(1)
	} else {
		m.leaseHolder.Set(0)
	}
}

// SetVersion records the mapping version this replica serves.
func (m *Metrics) SetVersion(v uint64) { m.version.Set(float64(v)) }
