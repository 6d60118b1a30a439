package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/betasync/betasync"
)

// errorBody is LiteLLM's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   string `json:"param,omitempty"`
	Code    string `json:"code"`
}

// writeError answers with err's status (from its betasync code) and a JSON
// body whose message says what is wrong. Internal errors are logged, and
// their details are not shown.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, param string) {
	code := betasync.ErrorCode(err)
	status := betasync.Status(code)
	if code == betasync.EINTERNAL {
		log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{
		Message: betasync.ErrorMessage(err),
		Type:    code,
		Param:   param,
		Code:    strconv.Itoa(status),
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the status is out; a failed write has nobody to tell
}
