package httpapi

import (
	"net/http"
	"strconv"
	"strings"
)

// PathLiteLLMConfig serves the effective mapping as LiteLLM's raw
// anthropic_beta_headers_config.json, for LiteLLM pods: point their
// LITELLM_ANTHROPIC_BETA_HEADERS_URL here.
const PathLiteLLMConfig = "/anthropic_beta_headers_config.json"

// handleLiteLLMConfig answers with the document this replica serves (the
// stored version, overrides merged), its ETag the version's hash. A
// request whose If-None-Match names that ETag gets 304. LiteLLM's loader
// (httpx.get(url, timeout=5), then raise_for_status) sends no
// If-None-Match, so it always gets the 200 it expects; caches and curl
// revalidate cheaply.
func (s *server) handleLiteLLMConfig() http.Handler {
	cacheControl := "private, no-cache"
	if s.cfg.PublicConfig {
		cacheControl = "public, no-cache"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := s.cfg.Mapping.Current()
		etag := `"` + cur.Hash() + `"`
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", cacheControl)
		h.Set("Vary", "Authorization, X-Litellm-Api-Key")
		h.Set("X-Betasync-Version", strconv.FormatUint(cur.Version, 10))
		h.Set("X-Betasync-Source", cur.Source)
		if etagMatch(r.Header.Values("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := cur.JSON()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body) // the status is out; a failed write has nobody to tell
		}
	})
}

// etagMatch applies If-None-Match's weak comparison (RFC 9110 §13.1.2): any
// listed tag, W/ or not, equal to etag, or "*".
func etagMatch(values []string, etag string) bool {
	for _, v := range values {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// basicAsKey lets a client that can only put credentials in the URL
// (LiteLLM's loader: httpx turns https://user:KEY@host/... into Basic
// auth) present a key: the Basic password is taken as the API key. Only
// the LiteLLM document's route accepts it.
func basicAsKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); ok && pass != "" && r.Header.Get("X-Litellm-Api-Key") == "" {
			r = r.Clone(r.Context())
			r.Header.Del("Authorization")
			r.Header.Set("X-Litellm-Api-Key", pass)
		}
		next.ServeHTTP(w, r)
	})
}
