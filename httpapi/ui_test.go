package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/httpapi"
)

// TestConsole checks what the console's page and endpoints answer, without
// a browser (the browser tests are in internal/console).
func TestConsole(t *testing.T) {
	e := setup(t)

	t.Run("the shell needs no key and carries the security headers", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/ui", noKey)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
		csp := r.header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			assert.Contains(t, csp, want)
		}
		assert.NotContains(t, csp, "unsafe-inline")
		assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
		assert.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"))
		body := string(r.body)
		assert.Contains(t, body, `<script src="/ui/static/console.js?v=`)
		assert.NotContains(t, body, "<script>", "no inline script: the CSP forbids it")
		assert.NotRegexp(t, `\son[a-z]+=`, body, "no inline event handlers")
		assert.NotContains(t, body, "tool-search-tool-2025-10-19", "the shell holds no data")
	})

	t.Run("assets", func(t *testing.T) {
		for path, ctype := range map[string]string{
			"/ui/static/console.js":  "text/javascript; charset=utf-8",
			"/ui/static/console.css": "text/css; charset=utf-8",
		} {
			r := e.do(t, http.MethodGet, path, noKey)
			require.Equal(t, http.StatusOK, r.status, path)
			assert.Equal(t, ctype, r.header.Get("Content-Type"), path)
			assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), path)
			assert.NotEmpty(t, r.body, path)
		}
		assert.Equal(t, http.StatusNotFound, e.do(t, http.MethodGet, "/ui/static/nope.js", noKey).status)
		assert.Equal(t, http.StatusNotFound, e.do(t, http.MethodGet, "/ui/static/..%2fui.go", noKey).status)
	})

	t.Run("whoami names the key's owner and role, never the key", func(t *testing.T) {
		for _, tc := range []struct {
			key, name, role string
		}{
			{masterKey, "master", httpapi.RoleAdmin},
			{adminKey, "ops", httpapi.RoleAdmin},
			{viewerKey, "dashboard", httpapi.RoleViewer},
		} {
			r := e.do(t, http.MethodGet, "/anthropic_beta_headers/whoami", bearer(tc.key))
			var got httpapi.WhoamiResponse
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			require.NoError(t, json.Unmarshal(r.body, &got))
			assert.Equal(t, httpapi.WhoamiResponse{Name: tc.name, Role: tc.role}, got)
			assert.NotContains(t, string(r.body), tc.key)
		}
		assert.Equal(t, http.StatusUnauthorized, e.do(t, http.MethodGet, "/anthropic_beta_headers/whoami", noKey).status)
	})

	t.Run("filter answers what a pod sends", func(t *testing.T) {
		filter := func(t *testing.T, provider string, edit func(*http.Request)) httpapi.FilterResponse {
			t.Helper()
			r := e.doWith(t, http.MethodGet, "/anthropic_beta_headers/filter?provider="+url.QueryEscape(provider), func(r *http.Request) {
				bearer(viewerKey)(r)
				edit(r)
			})
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			var got httpapi.FilterResponse
			require.NoError(t, json.Unmarshal(r.body, &got))
			return got
		}
		value := "advanced-tool-use-2025-11-20, context-1m-2025-08-07,interleaved-thinking-2025-05-14,no-such-beta"
		got := filter(t, "bedrock", func(r *http.Request) { r.Header.Set("anthropic-beta", value) })
		assert.True(t, got.Known)
		assert.Equal(t, "bedrock", got.Section)
		assert.Equal(t, []string{"context-1m-2025-08-07", "tool-search-tool-2025-10-19"}, got.Sent)
		require.NotNil(t, got.Header)
		assert.Equal(t, "context-1m-2025-08-07,tool-search-tool-2025-10-19", *got.Header)
		assert.Equal(t, e.sub.Current().HeaderValue("bedrock", value), *got.Header, "the pods' code")
		assert.Equal(t, e.sub.Current().Version, got.Version)
		results := map[string]string{}
		for _, it := range got.Items {
			results[it.Beta] = it.Result
		}
		assert.Equal(t, map[string]string{
			"advanced-tool-use-2025-11-20":    httpapi.ResultRenamed,
			"context-1m-2025-08-07":           httpapi.ResultForwarded,
			"interleaved-thinking-2025-05-14": httpapi.ResultUnsupported,
			"no-such-beta":                    httpapi.ResultAbsent,
		}, results)

		// Repeated lines and ?value= merge, as repeated header lines do.
		got = filter(t, "bedrock", func(r *http.Request) {
			r.Header.Add("anthropic-beta", "context-1m-2025-08-07")
			r.Header.Add("anthropic-beta", "advanced-tool-use-2025-11-20")
		})
		assert.Equal(t, []string{"context-1m-2025-08-07", "tool-search-tool-2025-10-19"}, got.Sent)
		got = filter(t, "bedrock", func(r *http.Request) { r.URL.RawQuery += "&value=context-1m-2025-08-07" })
		assert.Equal(t, []string{"context-1m-2025-08-07"}, got.Sent)

		// Nothing survives: the header is removed (null). Unknown provider: fail-closed.
		got = filter(t, "bedrock", func(r *http.Request) { r.Header.Set("anthropic-beta", "interleaved-thinking-2025-05-14") })
		assert.Nil(t, got.Header)
		assert.Empty(t, got.Sent)
		got = filter(t, "nowhere", func(r *http.Request) { r.Header.Set("anthropic-beta", "context-1m-2025-08-07") })
		assert.False(t, got.Known)
		assert.Nil(t, got.Header)

		r := e.do(t, http.MethodGet, "/anthropic_beta_headers/filter", bearer(viewerKey))
		assert.Equal(t, http.StatusUnprocessableEntity, r.status, "no provider: body %s", r.body)
	})

	// The API reads keys from headers only. A cross-site form or image can
	// carry cookies and query parameters, never a header, so it cannot
	// authenticate a state-changing request: that is the console's CSRF
	// protection, and it must stay true.
	t.Run("no state-changing endpoint takes a key from a cookie or the query", func(t *testing.T) {
		writes := []struct{ method, path string }{
			{http.MethodPost, "/reload/anthropic_beta_headers"},
			{http.MethodPost, "/schedule/anthropic_beta_headers_reload?hours=6"},
			{http.MethodDelete, "/schedule/anthropic_beta_headers_reload"},
			{http.MethodPost, "/anthropic_beta_headers/rollback?version=1"},
			{http.MethodPut, "/anthropic_beta_headers/overrides/bedrock/context-1m-2025-08-07"},
			{http.MethodDelete, "/anthropic_beta_headers/overrides/bedrock/context-1m-2025-08-07"},
		}
		params := []string{"key", "api_key", "apikey", "token", "access_token", "authorization", "x-litellm-api-key", "litellm_api_key"}
		before := e.sub.Current().Version
		for _, w := range writes {
			sep := "?"
			if strings.Contains(w.path, "?") {
				sep = "&"
			}
			q := url.Values{}
			for _, p := range params {
				q.Set(p, masterKey)
			}
			r := e.do(t, w.method, w.path+sep+q.Encode(), noKey)
			assert.Equal(t, http.StatusUnauthorized, r.status, "%s %s with the key in the query: %s", w.method, w.path, r.body)

			r = e.doWith(t, w.method, w.path, func(r *http.Request) {
				for _, p := range params {
					r.AddCookie(&http.Cookie{Name: p, Value: masterKey})
				}
				r.AddCookie(&http.Cookie{Name: "Authorization", Value: url.QueryEscape("Bearer " + masterKey)})
			})
			assert.Equal(t, http.StatusUnauthorized, r.status, "%s %s with the key in a cookie: %s", w.method, w.path, r.body)
		}
		assert.Equal(t, before, e.sub.Current().Version, "nothing changed")
	})
}
