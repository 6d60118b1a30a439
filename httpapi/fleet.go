package httpapi

import (
	"context"
	"net/http"
)

// handleFleet answers GET /anthropic_beta_headers/fleet: every pod that
// answered within the window, the newest version, and the laggards.
func (s *server) handleFleet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		res, err := s.cfg.Commands.Fleet(ctx)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}
