package httpapi

import "net/http"

// routes lists every endpoint in one place.
func (s *server) routes() {
	r := s.router
	r.NotFoundHandler = s.handleNotFound()
	r.MethodNotAllowedHandler = s.handleMethodNotAllowed()
	if s.cfg.Metrics != nil {
		r.Handle("/metrics", s.cfg.Metrics).Methods(http.MethodGet)
	}
	r.Handle("/healthz", s.handleHealthz()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", s.handleReadyz()).Methods(http.MethodGet, http.MethodHead)
	if s.cfg.Commands == nil {
		return // a worker-only replica: health and metrics only
	}
	// LiteLLM's endpoints.
	r.Handle("/reload/anthropic_beta_headers", s.auth(RoleAdmin, s.handleReload())).Methods(http.MethodPost)
	r.Handle("/schedule/anthropic_beta_headers_reload", s.auth(RoleAdmin, s.handleScheduleSet())).Methods(http.MethodPost)
	r.Handle("/schedule/anthropic_beta_headers_reload", s.auth(RoleAdmin, s.handleScheduleCancel())).Methods(http.MethodDelete)
	r.Handle("/schedule/anthropic_beta_headers_reload/status", s.auth(RoleViewer, s.handleScheduleStatus())).Methods(http.MethodGet)
	// Ours.
	r.Handle("/anthropic_beta_headers", s.auth(RoleViewer, s.handleMapping())).Methods(http.MethodGet)
	r.Handle("/anthropic_beta_headers/fleet", s.auth(RoleViewer, s.handleFleet())).Methods(http.MethodGet)
}
