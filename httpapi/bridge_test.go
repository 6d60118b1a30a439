package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/testbed"
)

// litellmLoader fetches the mapping as LiteLLM's loader does
// (litellm/anthropic_beta_headers_manager.py at BerriAI/litellm commit
// 076d1da40725b5dac016ebfb505c264d440bee9e,
// GetAnthropicBetaHeadersConfig.fetch_remote_beta_headers_config and
// get_beta_headers_config):
//
//   - httpx.get(url, timeout=5): one GET, no If-None-Match (it keeps no
//     ETag), redirects not followed (httpx's default), httpx's default
//     headers, credentials only from the URL's userinfo (Basic auth);
//   - response.raise_for_status(): any status but 2xx is a failure (httpx
//     raises on 3xx too, so a 304 would be a failure);
//   - response.json(), then _check_is_valid_dict: a non-empty object with
//     at least one of anthropic, azure_ai, bedrock, bedrock_converse,
//     vertex_ai.
//
// On any failure LiteLLM falls back to its bundled file; the loader reports
// that as an error here, so the test sees it.
func litellmLoader(rawURL string) (map[string]any, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil) //nolint:noctx // the loader has only a timeout
	if err != nil {
		return nil, err
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pass)
		req.URL.User = nil
	}
	req.Header.Set("User-Agent", "python-httpx/0.28.1")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("raise_for_status: %d", resp.StatusCode)
	}
	var doc any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	obj, ok := doc.(map[string]any)
	if !ok || len(obj) == 0 {
		return nil, errors.New("not a non-empty dict")
	}
	for _, p := range []string{"anthropic", "azure_ai", "bedrock", "bedrock_converse", "vertex_ai"} {
		if _, ok := obj[p]; ok {
			return obj, nil
		}
	}
	return nil, errors.New("missing provider keys")
}

func TestLiteLLMConfigBridge(t *testing.T) {
	e := setupLiteLLM(t, testbed.DocUpstream)
	base := e.api.URL + httpapi.PathLiteLLMConfig

	t.Run("LiteLLM's loader gets the document with a viewer key in the URL", func(t *testing.T) {
		u, err := url.Parse(base)
		require.NoError(t, err)
		u.User = url.UserPassword("litellm", viewerKey)
		doc, err := litellmLoader(u.String())
		require.NoError(t, err)
		raw, err := json.Marshal(doc)
		require.NoError(t, err)
		m, err := betasync.Parse(raw)
		require.NoError(t, err)
		assert.Equal(t, e.sub.Current().Hash(), m.Hash(), "the version this replica serves")
	})

	t.Run("without a key: 401, so LiteLLM falls back loudly in its log", func(t *testing.T) {
		_, err := litellmLoader(base)
		require.ErrorContains(t, err, "401")
	})

	t.Run("a LiteLLM non-admin role key: 403", func(t *testing.T) {
		u, _ := url.Parse(base)
		u.User = url.UserPassword("x", internalUserKey)
		_, err := litellmLoader(u.String())
		require.ErrorContains(t, err, "403")
	})

	t.Run("ETag, If-None-Match and Cache-Control", func(t *testing.T) {
		r := e.do(t, http.MethodGet, httpapi.PathLiteLLMConfig, bearer(viewerKey))
		require.Equal(t, http.StatusOK, r.status)
		etag := r.header.Get("ETag")
		assert.Equal(t, `"`+e.sub.Current().Hash()+`"`, etag)
		assert.Equal(t, "private, no-cache", r.header.Get("Cache-Control"))
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		assert.Equal(t, string(e.sub.Current().JSON()), string(r.body))

		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			r := e.doWith(t, http.MethodGet, httpapi.PathLiteLLMConfig, func(req *http.Request) {
				bearer(viewerKey)(req)
				req.Header.Set("If-None-Match", inm)
			})
			assert.Equal(t, http.StatusNotModified, r.status, inm)
			assert.Empty(t, r.body)
			assert.Equal(t, etag, r.header.Get("ETag"))
		}
		r = e.doWith(t, http.MethodGet, httpapi.PathLiteLLMConfig, func(req *http.Request) {
			bearer(viewerKey)(req)
			req.Header.Set("If-None-Match", `"stale"`)
		})
		assert.Equal(t, http.StatusOK, r.status)

		head := e.do(t, http.MethodHead, httpapi.PathLiteLLMConfig, bearer(viewerKey))
		assert.Equal(t, http.StatusOK, head.status)
		assert.Equal(t, etag, head.header.Get("ETag"))
	})

	t.Run("an override reaches the document, with a new ETag", func(t *testing.T) {
		before := e.do(t, http.MethodGet, httpapi.PathLiteLLMConfig, bearer(viewerKey)).header.Get("ETag")
		name := "context-1m"
		res, err := e.stack.Client.SetOverride(t.Context(), "bedrock", "context-1m-2025-08-07", &name)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return e.sub.Current().Version == res.Version }, waitFor, tick)
		u, _ := url.Parse(base)
		u.User = url.UserPassword("", viewerKey)
		doc, err := litellmLoader(u.String())
		require.NoError(t, err)
		bedrock, ok := doc["bedrock"].(map[string]any)
		require.True(t, ok)
		assert.Equal(t, "context-1m", bedrock["context-1m-2025-08-07"])
		r := e.do(t, http.MethodGet, httpapi.PathLiteLLMConfig, bearer(viewerKey))
		assert.NotEqual(t, before, r.header.Get("ETag"))
	})

	t.Run("BETASYNC_PUBLIC_CONFIG: no key needed", func(t *testing.T) {
		api := httptest.NewServer(httpapi.NewServer(httpapi.Config{
			Commands: e.stack.Client, Mapping: e.sub, Keys: litellmKeyring(t), PublicConfig: true,
		}))
		t.Cleanup(api.Close)
		doc, err := litellmLoader(api.URL + httpapi.PathLiteLLMConfig)
		require.NoError(t, err)
		assert.Contains(t, doc, "anthropic")
		resp, err := api.Client().Get(api.URL + httpapi.PathLiteLLMConfig)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, "public, no-cache", resp.Header.Get("Cache-Control"))
		// The other routes still need a key.
		resp, err = api.Client().Get(api.URL + pathMapping)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
}
