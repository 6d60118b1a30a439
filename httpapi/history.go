package httpapi

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/betasync/betasync"
)

// handleHistory lists the stored versions: ?limit=N.
func (s *server) handleHistory() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		limit, err := betasync.ParseLimit(r.URL.Query().Get("limit"))
		if err != nil {
			writeError(w, r, s.log, err, "limit")
			return
		}
		res, err := s.cfg.Commands.History(ctx, limit)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// handleHistoryVersion answers one stored version in its envelope form.
func (s *server) handleHistoryVersion() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		v, err := betasync.ParseVersion(mux.Vars(r)["version"])
		if err != nil {
			writeError(w, r, s.log, err, "version")
			return
		}
		res, err := s.cfg.Commands.HistoryVersion(ctx, v)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// handleRollback stores an earlier version's document again: ?version=N.
func (s *server) handleRollback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		v, err := betasync.ParseVersion(r.URL.Query().Get("version"))
		if err != nil {
			writeError(w, r, s.log, err, "version")
			return
		}
		res, err := s.cfg.Commands.Rollback(ctx, v)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		s.caughtUp(r, res.Version)
		writeJSON(w, http.StatusOK, res)
	})
}
