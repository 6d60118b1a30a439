package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
)

// The pod serves the embedded default at once, then switches to each
// version the bus announces.
func TestPodSwitchesVersions(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.JetStream(t)
	store, err := kv.Ensure(t.Context(), js, kv.Config{})
	require.NoError(t, err)

	base := startPod(t, srv.ClientURL())

	filter := func() filterResponse {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/filter?provider=bedrock", nil)
		require.NoError(t, err)
		req.Header.Add("anthropic-beta", "context-1m-2025-08-07,advanced-tool-use-2025-11-20")
		req.Header.Add("anthropic-beta", "files-api-2025-04-14")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var out filterResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out
	}

	first := filter()
	assert.Equal(t, "context-1m-2025-08-07,tool-search-tool-2025-10-19", first.AnthropicBeta)
	assert.Equal(t, uint64(0), first.Version)
	assert.Equal(t, betasync.SourceEmbedded, first.Source)

	// A new version drops context-1m for bedrock.
	m, err := betasync.Parse([]byte(`{"bedrock": {"context-1m-2025-08-07": null, "advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"}}`))
	require.NoError(t, err)
	e := betasync.NewSnapshot(m, betasync.SourceRemote, time.Now())
	e.Version, err = store.Mappings.Put(t.Context(), e, 0)
	require.NoError(t, err)
	actx, acancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer acancel()
	require.NoError(t, publisher.Announce(actx, nc, e))

	require.Eventually(t, func() bool { return filter().Version == e.Version }, 5*time.Second, 10*time.Millisecond)
	now := filter()
	assert.Equal(t, "tool-search-tool-2025-10-19", now.AnthropicBeta)
	assert.Equal(t, []string{"tool-search-tool-2025-10-19"}, now.Betas)
	assert.Equal(t, m.Hash(), now.Hash)

	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// startPod runs the pod on a free port against the NATS at natsURL until
// the test ends, and returns its base URL.
func startPod(t *testing.T, natsURL string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncbuf.Buffer{}
	env := map[string]string{"NATS_URL": natsURL, "POD_HTTP_ADDR": "127.0.0.1:0"}
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, stdout, &syncbuf.Buffer{}) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	var base string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 5*time.Second, 10*time.Millisecond)
	return base
}
