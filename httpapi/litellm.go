package httpapi

import (
	"net/http"
	"strings"

	"github.com/betasync/betasync"
)

// LiteLLM's four endpoints. On them betasync answers errors as LiteLLM
// does (litellm/proxy/proxy_server.py, FastAPI): {"detail": "..."} for an
// HTTPException (400, 403, 500, ...), FastAPI's validation list for 422,
// and LiteLLM's auth layer's ProxyException shape for 401. Our own routes
// keep {"error": {message, type, param, code}}.
const (
	pathReload         = "/reload/anthropic_beta_headers"
	pathSchedule       = "/schedule/anthropic_beta_headers_reload"
	pathScheduleStatus = "/schedule/anthropic_beta_headers_reload/status"
)

func isLiteLLMPath(p string) bool {
	return p == pathReload || p == pathSchedule || p == pathScheduleStatus
}

// LiteLLM's user roles (litellm.proxy._types.LitellmUserRoles). A keys file
// may name them: proxy_admin is betasync's admin; the others hold no
// betasync role, so such a key authenticates and gets 403 everywhere, as
// LiteLLM's non-admin roles get 403 on LiteLLM's four endpoints.
const (
	RoleProxyAdmin = "proxy_admin"
)

var litellmNonAdminRoles = map[string]bool{
	"proxy_admin_viewer":   true,
	"internal_user":        true,
	"internal_user_viewer": true,
	"org_admin":            true,
	"team":                 true,
	"customer":             true,
}

// detailBody is FastAPI's HTTPException body. Type is ours: the betasync
// error code the old shape carried as error.type.
type detailBody struct {
	Detail string `json:"detail"`
	Type   string `json:"type,omitempty"`
}

// validationItem is one entry of FastAPI's (pydantic v2) 422 body.
type validationItem struct {
	Type  string   `json:"type"`
	Loc   []string `json:"loc"`
	Msg   string   `json:"msg"`
	Input *string  `json:"input"`
}

type validationBody struct {
	Detail []validationItem `json:"detail"`
	Type   string           `json:"type,omitempty"`
}

// writeLiteLLMError answers err on one of LiteLLM's endpoints. param names
// the query parameter at fault, for 422.
func writeLiteLLMError(w http.ResponseWriter, r *http.Request, code string, status int, msg, param string) {
	switch status {
	case http.StatusUnauthorized:
		// LiteLLM's user_api_key_auth raises ProxyException(message=
		// "Authentication Error, ...", type="auth_error", param="None",
		// code=401), answered by its openai_exception_handler.
		none := "None"
		writeJSON(w, status, errorBody{Error: errorDetail{
			Message: "Authentication Error, " + msg, Type: "auth_error", Param: &none, Code: "401",
		}})
	case http.StatusUnprocessableEntity:
		item := validationItem{Type: "missing", Loc: []string{"query", param}, Msg: "Field required"}
		if _, ok := r.URL.Query()[param]; ok {
			in := clip(r.URL.Query().Get(param), clipLen)
			item = validationItem{Type: "float_parsing", Loc: []string{"query", param},
				Msg: "Input should be a valid number, unable to parse string as a number", Input: &in}
		}
		writeJSON(w, status, validationBody{Detail: []validationItem{item}, Type: code})
	default:
		writeJSON(w, status, detailBody{Detail: msg, Type: code})
	}
}

// NoWorkerWarning begins the warning of a status that an API replica read
// from KV itself because no worker answered.
const NoWorkerWarning = "no betasync worker answered: this API replica read the status from KV; lock_holder is empty when no worker holds the lease"

// LiteLLM's 401 texts (litellm/proxy/auth/user_api_key_auth.py), after
// "Authentication Error, ". Where LiteLLM goes on to echo the key it was
// given (abbreviated, with its hash), betasync stops: a key is never
// written back, logged or stored.
const (
	litellmMissingKey   = "No api key passed in."
	litellmMalformedKey = "Malformed API Key passed in. Ensure Key has `Bearer ` prefix."
	litellmInvalidKey   = "Invalid proxy server token passed."
)

// litellmNoKey is LiteLLM's text for a request that carries no usable key:
// none at all, or an Authorization header that is not "Bearer <key>".
func litellmNoKey(r *http.Request) string {
	if r.Header.Get("Authorization") == "" {
		return litellmMissingKey
	}
	return litellmMalformedKey
}

// litellmForbidden is LiteLLM's 403 text on its four endpoints.
func litellmForbidden(role string) string {
	return "Access denied. Admin role required. Current role: " + role
}

// hoursError words a bad hours value as LiteLLM does where LiteLLM rejects
// it (hours <= 0: "Hours must be greater than 0"), and as betasync does for
// what only betasync rejects (below 0.01, above 8760, NaN).
func hoursError(err error, hours float64) error {
	if betasync.ErrorCode(err) == betasync.EINVALID && hours <= 0 {
		return betasync.Errorf(betasync.EINVALID, "Hours must be greater than 0")
	}
	return err
}

// roleName is the role a 403 names.
func roleName(r string) string {
	if r == "" {
		return "none"
	}
	return strings.ToLower(r)
}
