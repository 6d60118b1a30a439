// Package metrics defines betasync's Prometheus metrics on a registry of its
// own, and the handler that serves them.
package metrics

import (
	"net/http"
	"strconv"
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
}

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
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.reloads, m.lastSuccess, m.version, m.leaseHolder,
	)
	return m
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
