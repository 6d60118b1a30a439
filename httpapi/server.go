// Package httpapi serves betasync's admin API over HTTP: LiteLLM's
// endpoints for reloading and scheduling the anthropic-beta mapping, the
// current mapping, health and metrics.
//
// The API never fetches or schedules itself: every admin call becomes a NATS
// request (see package publisher), and the worker's answer is returned.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/betasync/betasync"
)

// Mapping gives the version this replica serves (subscriber.Subscriber).
type Mapping interface {
	Current() *betasync.Snapshot
	// WaitVersion waits until the version served is at least v.
	WaitVersion(ctx context.Context, v uint64) error
}

// readYourWrites bounds how long a command's reply waits for this
// replica's own mapping to reach the version the command stored.
const readYourWrites = 2 * time.Second

// caughtUp waits (briefly) until this replica serves version v, so that a
// GET right after a reply that said "version v" shows v.
func (s *server) caughtUp(r *http.Request, v uint64) {
	if s.cfg.Mapping == nil || v == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readYourWrites)
	defer cancel()
	if err := s.cfg.Mapping.WaitVersion(ctx, v); err != nil {
		s.log.Debug("replied before this replica served the new version", "version", v, "serving", s.cfg.Mapping.Current().Version)
	}
}

// RequestObserver counts requests (metrics.Metrics).
type RequestObserver interface {
	ObserveRequest(route, method string, code int, d time.Duration)
}

// Config holds the server's dependencies.
type Config struct {
	// Commands, Mapping and Keys serve the admin API. With Commands nil the
	// server has only /healthz and /metrics (a worker-only replica).
	Commands betasync.Commands // publisher.Client: each call goes to a worker over NATS
	Mapping  Mapping
	Keys     *Keyring
	// Ready answers /readyz: nil when this replica can do its job (for an
	// API replica: NATS connected and a worker answering). Nil: always ready.
	Ready func(ctx context.Context) error
	// PublicConfig serves PathLiteLLMConfig without a key
	// (BETASYNC_PUBLIC_CONFIG); otherwise it needs a viewer key.
	PublicConfig bool
	// StatusFallback, when set, answers the schedule status when no worker
	// does (the status lives in KV, which an API replica can read): the
	// answer says so in its warning. Nil: 503, as any other command.
	StatusFallback func(ctx context.Context) (betasync.ScheduleStatus, error)
	// CommandTimeout bounds one command; make it longer than the worker's
	// fetch timeout. 30s when 0.
	CommandTimeout time.Duration
	AuthLimits     AuthLimits      // failed-login throttle and log; zero: defaults
	Logger         *slog.Logger    // nil discards
	Observer       RequestObserver // nil skips
	Metrics        http.Handler    // serves /metrics; nil: 404
}

type server struct {
	cfg    Config
	log    *slog.Logger
	router *mux.Router
}

// NewServer returns the admin API handler.
func NewServer(cfg Config) http.Handler {
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, log: cfg.Logger, router: mux.NewRouter()}
	s.routes()
	return s.observe(s.router)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// observe logs and counts every request by its route template: method,
// route, status, duration and request id. Keys are never logged.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		route := "unmatched"
		var match mux.RouteMatch
		if s.router.Match(r, &match) && match.Route != nil {
			if tpl, err := match.Route.GetPathTemplate(); err == nil {
				route = tpl
			}
		} else if errors.Is(match.MatchErr, mux.ErrMethodMismatch) {
			route = s.routeOfPath(r) // a 405 on a known route: that route
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		d := time.Since(start)
		level := slog.LevelInfo
		if quietRoutes[route] && rec.status < http.StatusBadRequest {
			level = slog.LevelDebug // probes and scrapes would drown the log
		}
		if rec.status == http.StatusUnauthorized || rec.status == http.StatusTooManyRequests {
			level = slog.LevelDebug // a flood would fill the disk; authguard.go logs these, rate-limited
		}
		s.log.Log(r.Context(), level, "http request", "method", r.Method, "route", route, "status", rec.status,
			"duration_ms", float64(d.Microseconds())/1000, "request_id", id)
		if s.cfg.Observer != nil {
			s.cfg.Observer.ObserveRequest(route, methodLabel(r.Method), rec.status, d)
		}
	})
}

// quietRoutes are logged at debug level when they succeed.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// methodLabel bounds the method label: a client may send any token as a
// method, and every distinct one would otherwise become a new time series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// routeOfPath returns the template of a route that serves r's path with
// some other method, or "unmatched".
func (s *server) routeOfPath(r *http.Request) string {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.Route != nil {
			if tpl, err := match.Route.GetPathTemplate(); err == nil {
				return tpl
			}
		}
	}
	return "unmatched"
}
