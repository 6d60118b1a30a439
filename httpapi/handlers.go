package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/betasync/betasync"
)

// auth admits requests whose key holds role (admin holds every role), and
// names the key (never the key itself) and the client's address as the
// request's betasync.Actor, for the audit trail.
func (s *server) auth(role string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, why := token(r)
		if tok == "" {
			if isLiteLLMPath(r.URL.Path) {
				why = litellmNoKey(r)
			}
			writeError(w, r, s.log, &betasync.Error{Code: betasync.EUNAUTHORIZED, Message: why}, "")
			return
		}
		key, ok := s.cfg.Keys.authenticate(tok)
		if !ok {
			why = "invalid API key"
			if isLiteLLMPath(r.URL.Path) {
				why = litellmInvalidKey
			}
			writeError(w, r, s.log, &betasync.Error{Code: betasync.EUNAUTHORIZED, Message: why}, "")
			return
		}
		if !allowed(key.Role, role) {
			msg := fmt.Sprintf("key %q has role %q; this endpoint needs %q", key.Name, key.Role, role)
			if isLiteLLMPath(r.URL.Path) {
				msg = litellmForbidden(roleName(key.Role))
			}
			writeError(w, r, s.log, &betasync.Error{Code: betasync.EFORBIDDEN, Message: msg}, "")
			return
		}
		addr := r.RemoteAddr
		if len(s.cfg.AuthLimits.TrustedProxies) > 0 {
			addr = clientAddr(r, s.cfg.AuthLimits.TrustedProxies) // the client behind a trusted proxy
		}
		actor := betasync.Actor{Name: key.Name, Addr: addr}
		next.ServeHTTP(w, r.WithContext(betasync.WithActor(r.Context(), actor)))
	})
}

func (s *server) handleReload() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		res, err := s.cfg.Commands.Reload(ctx)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		s.caughtUp(r, res.Version)
		writeJSON(w, http.StatusOK, res)
	})
}

func (s *server) handleScheduleSet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		hours, err := betasync.ParseHours(r.URL.Query().Get("hours"))
		if err != nil {
			writeError(w, r, s.log, hoursError(err, hours), "hours")
			return
		}
		res, err := s.cfg.Commands.SetSchedule(ctx, hours)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func (s *server) handleScheduleCancel() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		res, err := s.cfg.Commands.CancelSchedule(ctx)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func (s *server) handleScheduleStatus() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
		defer cancel()
		res, err := s.cfg.Commands.Status(ctx)
		if betasync.ErrorCode(err) == betasync.EUNAVAILABLE && s.cfg.StatusFallback != nil {
			if st, ferr := s.cfg.StatusFallback(ctx); ferr == nil {
				st.Warning = NoWorkerWarning + " (" + betasync.ErrorMessage(err) + ")"
				res, err = st, nil
			}
		}
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// mappingResponse is the HTTP form of the version this replica serves.
type mappingResponse struct {
	Version   uint64          `json:"version"`
	Hash      string          `json:"hash"`
	Source    string          `json:"source"`
	FetchedAt *time.Time      `json:"fetched_at"`
	URL       string          `json:"url,omitempty"`
	ETag      string          `json:"etag,omitempty"`
	AppliedAt time.Time       `json:"applied_at"`
	Config    json.RawMessage `json:"config"`

	// Overrides marks the entries of config that come from overrides.
	Overrides betasync.Overrides `json:"overrides,omitempty"`
}

func (s *server) handleMapping() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := s.cfg.Mapping.Current()
		res := mappingResponse{
			Version:   cur.Version,
			Hash:      cur.Hash(),
			Source:    cur.Source,
			URL:       cur.URL,
			ETag:      cur.ETag,
			AppliedAt: cur.AppliedAt,
			Config:    cur.JSON(),
			Overrides: cur.Overrides.Values(),
		}
		if !cur.FetchedAt.IsZero() {
			res.FetchedAt = &cur.FetchedAt
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers whether this replica can do its job (Config.Ready).
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if s.cfg.Ready != nil {
			if err := s.cfg.Ready(ctx); err != nil {
				writeError(w, r, s.log, err, "")
				return
			}
		}
		body := map[string]any{"status": "ready"}
		if s.cfg.Mapping != nil {
			body["version"] = s.cfg.Mapping.Current().Version
		}
		writeJSON(w, http.StatusOK, body)
	})
}

func (s *server) handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, betasync.Errorf(betasync.ENOTFOUND, "no such endpoint: %s %s", clip(r.Method, 16), clip(r.URL.Path, clipLen)), "")
	})
}

func (s *server) handleMethodNotAllowed() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RFC 9110 §15.5.6: a 405 must list the methods the path allows.
		w.Header().Set("Allow", strings.Join(s.allowedMethods(r), ", "))
		if isLiteLLMPath(r.URL.Path) {
			writeJSON(w, http.StatusMethodNotAllowed, detailBody{Detail: "Method Not Allowed"}) // FastAPI's
			return
		}
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{
			Message: "method " + clip(r.Method, 16) + " is not allowed on " + clip(r.URL.Path, clipLen),
			Type:    "method_not_allowed",
			Code:    "405",
		}})
	})
}

// allowedMethods returns the methods some route serves on r's path.
func (s *server) allowedMethods(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil && match.Route != nil {
			allow = append(allow, m)
		}
	}
	return allow
}
