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
	// Every keyed route checks the key first, before any handler runs or a
	// body is read, behind the failed-login throttle (authguard.go).
	auth := s.authGuard()
	// LiteLLM's endpoints.
	r.Handle("/reload/anthropic_beta_headers", auth(RoleAdmin, s.handleReload())).Methods(http.MethodPost)
	r.Handle("/schedule/anthropic_beta_headers_reload", auth(RoleAdmin, s.handleScheduleSet())).Methods(http.MethodPost)
	r.Handle("/schedule/anthropic_beta_headers_reload", auth(RoleAdmin, s.handleScheduleCancel())).Methods(http.MethodDelete)
	r.Handle("/schedule/anthropic_beta_headers_reload/status", auth(RoleViewer, s.handleScheduleStatus())).Methods(http.MethodGet)
	// Ours.
	r.Handle("/anthropic_beta_headers", auth(RoleViewer, s.handleMapping())).Methods(http.MethodGet)
	r.Handle("/anthropic_beta_headers/history", auth(RoleViewer, s.handleHistory())).Methods(http.MethodGet)
	r.Handle("/anthropic_beta_headers/history/{version}", auth(RoleViewer, s.handleHistoryVersion())).Methods(http.MethodGet)
	r.Handle("/anthropic_beta_headers/rollback", auth(RoleAdmin, s.handleRollback())).Methods(http.MethodPost)
	r.Handle("/anthropic_beta_headers/overrides", auth(RoleViewer, s.handleOverrideList())).Methods(http.MethodGet)
	r.Handle("/anthropic_beta_headers/overrides/{provider}/{beta}", auth(RoleAdmin, s.handleOverrideSet())).Methods(http.MethodPut)
	r.Handle("/anthropic_beta_headers/overrides/{provider}/{beta}", auth(RoleAdmin, s.handleOverrideDelete())).Methods(http.MethodDelete)
	r.Handle("/anthropic_beta_headers/fleet", auth(RoleViewer, s.handleFleet())).Methods(http.MethodGet)
	// The console (/ui) and its two viewer endpoints (ui.go).
	s.uiRoutes(auth)
	// The bridge for LiteLLM pods (bridge.go).
	config := s.handleLiteLLMConfig()
	if !s.cfg.PublicConfig {
		config = basicAsKey(auth(RoleViewer, config))
	}
	r.Handle(PathLiteLLMConfig, config).Methods(http.MethodGet, http.MethodHead)
}
