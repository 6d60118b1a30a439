package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/betasync/betasync"
)

// handleOverrideSet serves PUT /anthropic_beta_headers/overrides/{provider}/{beta}
// with {"value": "name"} or {"value": null}. The body is read here, after
// auth, with a size limit.
func (s *server) handleOverrideSet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vars := mux.Vars(r)
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, betasync.MaxOverrideBody))
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			writeStatus(w, http.StatusRequestEntityTooLarge, statusType(http.StatusRequestEntityTooLarge),
				fmt.Sprintf("body is larger than %d bytes", betasync.MaxOverrideBody))
			return
		}
		if err != nil {
			writeError(w, r, s.log, betasync.Errorf(betasync.EINVALID, "reading the body: %v", err), "")
			return
		}
		value, err := betasync.ParseOverrideBody(body)
		if err != nil {
			writeError(w, r, s.log, err, "value")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		res, err := s.cfg.Commands.SetOverride(ctx, vars["provider"], vars["beta"], value)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		s.caughtUp(r, res.Version)
		writeJSON(w, http.StatusOK, res)
	})
}

// handleOverrideDelete serves DELETE /anthropic_beta_headers/overrides/{provider}/{beta}.
func (s *server) handleOverrideDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vars := mux.Vars(r)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		res, err := s.cfg.Commands.DeleteOverride(ctx, vars["provider"], vars["beta"])
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		s.caughtUp(r, res.Version)
		writeJSON(w, http.StatusOK, res)
	})
}

// handleOverrideList serves GET /anthropic_beta_headers/overrides.
func (s *server) handleOverrideList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		res, err := s.cfg.Commands.ListOverrides(ctx)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}
