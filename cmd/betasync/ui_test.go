package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/httpapi"
)

// The daemon serves the console, and its filter answers from the daemon's
// own subscriber (the browser walk is in internal/consoletest).
func TestDaemonConsole(t *testing.T) {
	d := startDaemon(t, nil)

	resp, err := http.Get(d.url + "/ui")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the shell needs no key")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")

	var me httpapi.WhoamiResponse
	require.Equal(t, http.StatusOK, d.call(t, http.MethodGet, "/anthropic_beta_headers/whoami", &me))
	assert.Equal(t, httpapi.WhoamiResponse{Name: "master", Role: httpapi.RoleAdmin}, me)

	var f httpapi.FilterResponse
	require.Equal(t, http.StatusOK, d.call(t, http.MethodGet,
		"/anthropic_beta_headers/filter?provider=bedrock&value=advanced-tool-use-2025-11-20,interleaved-thinking-2025-05-14", &f))
	require.NotNil(t, f.Header)
	assert.Equal(t, "tool-search-tool-2025-10-19", *f.Header)
}
