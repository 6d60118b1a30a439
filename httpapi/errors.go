package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/betasync/betasync"
)

// errorBody is betasync's error shape on its own routes (LiteLLM's
// ProxyException shape; LiteLLM's four endpoints answer as FastAPI does:
// see litellm.go).
type errorBody struct {
	Error errorDetail `json:"error"`
}

// errorDetail carries all four of LiteLLM's keys on every error: param is
// null when no parameter is at fault, never absent, so clients that index
// error.param do not fail.
type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// paramOf returns param for errorDetail.Param: nil (null) when empty.
func paramOf(param string) *string {
	if param == "" {
		return nil
	}
	return &param
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
	if isLiteLLMPath(r.URL.Path) {
		writeLiteLLMError(w, r, code, status, betasync.ErrorMessage(err), param)
		return
	}
	writeJSON(w, status, errorBody{Error: errorDetail{
		Message: betasync.ErrorMessage(err),
		Type:    code,
		Param:   paramOf(param),
		Code:    strconv.Itoa(status),
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the status is out; a failed write has nobody to tell
}
