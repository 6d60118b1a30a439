package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/golden"
	"github.com/betasync/betasync/internal/testbed"
)

const pathOverrides = "/anthropic_beta_headers/overrides"

// send makes a request with a body.
func (e *env) send(t *testing.T, method, path, body string, a auth) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.api.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	a(req)
	resp, err := e.api.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: data, path: req.URL.Path}
}

func (e *env) overrides(t *testing.T) betasync.OverrideList {
	t.Helper()
	r := e.do(t, http.MethodGet, pathOverrides, bearer(viewerKey))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var list betasync.OverrideList
	require.NoError(t, json.Unmarshal(r.body, &list))
	return list
}

func TestOverridesOverHTTP(t *testing.T) {
	e := setup(t)
	path := pathOverrides + "/bedrock/context-1m-2025-08-07"

	t.Run("roles", func(t *testing.T) {
		assert.Equal(t, http.StatusUnauthorized, e.send(t, http.MethodPut, path, `{"value": null}`, noKey).status)
		assert.Equal(t, http.StatusForbidden, e.send(t, http.MethodPut, path, `{"value": null}`, bearer(viewerKey)).status)
		assert.Equal(t, http.StatusForbidden, e.send(t, http.MethodPut, path, `not even JSON`, bearer(viewerKey)).status, "auth comes before the body")
		assert.Equal(t, http.StatusForbidden, e.do(t, http.MethodDelete, path, bearer(viewerKey)).status)
		assert.Equal(t, http.StatusUnauthorized, e.do(t, http.MethodGet, pathOverrides, noKey).status)
		assert.Empty(t, e.overrides(t).Overrides)
	})

	t.Run("bad requests change nothing", func(t *testing.T) {
		before := e.overrides(t)
		for _, tt := range []struct {
			name, path, body string
			status           int
			want             string
		}{
			{"empty body", path, ``, http.StatusUnprocessableEntity, "body is required"},
			{"missing value", path, `{}`, http.StatusUnprocessableEntity, "value is required"},
			{"unknown field", path, `{"value": null, "valeu": "x"}`, http.StatusBadRequest, "unknown field"},
			{"trailing data", path, `{"value": null}{"value": "x"}`, http.StatusBadRequest, "unexpected data"},
			{"not JSON", path, `value=x`, http.StatusBadRequest, "body must be"},
			{"a number", path, `{"value": 3}`, http.StatusBadRequest, "string or null"},
			{"too big", path, `{"value": "` + strings.Repeat("x", 8<<10) + `"}`, http.StatusRequestEntityTooLarge, "larger than"},
			{"unknown provider", pathOverrides + "/openai/context-1m-2025-08-07", `{"value": null}`, http.StatusBadRequest, `provider "openai"`},
			{"name with a comma", path, `{"value": "a,b"}`, http.StatusBadRequest, "comma"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := e.send(t, http.MethodPut, tt.path, tt.body, bearer(adminKey))
				assert.Equal(t, tt.status, r.status, "body: %s", r.body)
				assert.Contains(t, string(errorMessage(t, r)), tt.want)
			})
		}
		after := e.overrides(t)
		assert.Equal(t, before, after)
	})

	t.Run("set, shown in the mapping, delete", func(t *testing.T) {
		r := e.send(t, http.MethodPut, path, `{"value": "context-1m"}`, bearer(adminKey))
		obj := okObject(t, r)
		assertKeys(t, obj, "status", "message", "provider", "beta", "value", "overrides", "version", "changed", "hash", "timestamp")
		var res betasync.OverrideResult
		require.NoError(t, json.Unmarshal(r.body, &res))
		assert.True(t, res.Changed)
		require.Eventually(t, func() bool { return e.sub.Current().Version == res.Version }, waitFor, tick)

		m := okObject(t, e.do(t, http.MethodGet, pathMapping, bearer(viewerKey)))
		assert.JSONEq(t, `{"bedrock": {"context-1m-2025-08-07": "context-1m"}}`, string(m["overrides"]))
		assert.JSONEq(t, `"override"`, string(m["source"]))
		var config struct {
			Bedrock map[string]*string `json:"bedrock"`
		}
		require.NoError(t, json.Unmarshal(m["config"], &config))
		assert.Equal(t, "context-1m", *config.Bedrock["context-1m-2025-08-07"])

		list := e.overrides(t)
		assert.Equal(t, res.Overrides, list.Overrides)

		r = e.do(t, http.MethodDelete, path, bearer(adminKey))
		require.NoError(t, json.Unmarshal(okObject(t, r)["version"], &res.Version))
		require.Eventually(t, func() bool { return e.sub.Current().Version == res.Version }, waitFor, tick)
		m = okObject(t, e.do(t, http.MethodGet, pathMapping, bearer(viewerKey)))
		assert.NotContains(t, m, "overrides", "no override: the field is left out")

		r = e.do(t, http.MethodDelete, path, bearer(adminKey))
		assert.Equal(t, http.StatusNotFound, r.status, "body: %s", r.body)
	})
}

// errorMessage returns the message of a LiteLLM-shaped error body.
func errorMessage(t *testing.T, r reply) string {
	t.Helper()
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body), "body: %s", r.body)
	return body.Error.Message
}

// TestMappingWithOverridesGolden pins GET /anthropic_beta_headers for a
// version with overrides (the golden without them is unchanged).
func TestMappingWithOverridesGolden(t *testing.T) {
	up, err := betasync.Parse([]byte(`{"description": "golden", "provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"},
  "bedrock": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19", "context-1m-2025-08-07": null}}`))
	require.NoError(t, err)
	name := "context-1m"
	merged, err := up.WithOverrides(betasync.Overrides{"bedrock": {"context-1m-2025-08-07": &name, "advanced-tool-use-2025-11-20": nil}})
	require.NoError(t, err)
	snap := &betasync.Snapshot{
		Mapping:   merged.Mapping,
		Overrides: merged.Applied,
		Version:   8,
		Source:    betasync.SourceOverride,
		FetchedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		URL:       "https://example.test/m.json",
		ETag:      `"e1"`,
		AppliedAt: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
	}
	api := httptest.NewServer(httpapi.NewServer(httpapi.Config{
		Commands: &testbed.Commands{}, Mapping: fixedMapping{snap}, Keys: keyring(t),
	}))
	t.Cleanup(api.Close)
	e := &env{api: api}
	r := e.do(t, http.MethodGet, pathMapping, bearer(viewerKey))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	golden.Assert(t, "../testdata/golden/http_mapping_overrides.json", r.body)
}
