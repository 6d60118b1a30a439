package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/metrics"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

const (
	pathHistory  = "/anthropic_beta_headers/history"
	pathRollback = "/anthropic_beta_headers/rollback"
)

var docSmall = []byte(`{"anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"}, "bedrock": {"context-1m-2025-08-07": null}}`)

// TestHistoryAndRollbackOverHTTP: the history, one version and a rollback
// through the API, with roles, bad input, the audit lines (who, from
// where), and no key in the log.
func TestHistoryAndRollbackOverHTTP(t *testing.T) {
	var logs syncbuf.Buffer
	s := testbed.NewStack(t, testbed.Serve(docSmall), worker.Config{
		ReplicaID: replicaID,
		Logger:    slog.New(slog.NewJSONHandler(&logs, nil)),
	}, worker.Deps{})
	sub, err := subscriber.New(s.Node.NC)
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	e := &env{api: newAPI(t, s.Client, sub, metrics.New()), upstream: s.Upstream, sub: sub}

	okObject(t, e.do(t, http.MethodPost, pathReload, bearer(adminKey)))
	s.Upstream.Set(testbed.Serve(testbed.DocUpstream))
	reload := okObject(t, e.do(t, http.MethodPost, pathReload, bearer(masterKey)))
	assert.Contains(t, reload, "changes", "a reload that changed something says what")

	t.Run("history", func(t *testing.T) {
		h := okObject(t, e.do(t, http.MethodGet, pathHistory, bearer(viewerKey)))
		assertKeys(t, h, "status", "current", "kept", "count", "versions")
		var versions []map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(h["versions"], &versions))
		require.Len(t, versions, 2)
		assert.InDelta(t, 2, num(t, versions[0]["version"]), 0)
		assert.Equal(t, "master", str(t, versions[0]["actor"]))
		assert.Equal(t, "ops", str(t, versions[1]["actor"]))
		assert.Contains(t, versions[0], "changes")
		assert.NotContains(t, versions[1], "changes", "the first version has nothing before it")
		assertUTC(t, versions[0]["fetched_at"])

		h = okObject(t, e.do(t, http.MethodGet, pathHistory+"?limit=1", bearer(viewerKey)))
		assert.InDelta(t, 1, num(t, h["count"]), 0)
		assertError(t, e.do(t, http.MethodGet, pathHistory+"?limit=x", bearer(viewerKey)), http.StatusUnprocessableEntity)
		assertError(t, e.do(t, http.MethodGet, pathHistory+"?limit=-2", bearer(viewerKey)), http.StatusBadRequest)
		assertError(t, e.do(t, http.MethodGet, pathHistory, noKey), http.StatusUnauthorized)
	})

	t.Run("one version", func(t *testing.T) {
		v := okObject(t, e.do(t, http.MethodGet, pathHistory+"/1", bearer(viewerKey)))
		assertKeys(t, v, "version", "hash", "source", "fetched_at", "actor", "config")
		assert.InDelta(t, 1, num(t, v["version"]), 0)
		var back betasync.Snapshot
		require.NoError(t, json.Unmarshal(reply{body: mustMarshal(t, v)}.body, &back), "the envelope validates")
		d := assertError(t, e.do(t, http.MethodGet, pathHistory+"/77", bearer(viewerKey)), http.StatusNotFound)
		assert.Contains(t, d.Message, "versions kept: 1-2")
		assertError(t, e.do(t, http.MethodGet, pathHistory+"/abc", bearer(viewerKey)), http.StatusUnprocessableEntity)
		assertError(t, e.do(t, http.MethodGet, pathHistory+"/0", bearer(viewerKey)), http.StatusBadRequest)
	})

	t.Run("rollback", func(t *testing.T) {
		assertError(t, e.do(t, http.MethodPost, pathRollback+"?version=1", bearer(viewerKey)), http.StatusForbidden)
		for query, status := range map[string]int{
			"":            http.StatusUnprocessableEntity,
			"?version=":   http.StatusUnprocessableEntity,
			"?version=x":  http.StatusUnprocessableEntity,
			"?version=-1": http.StatusUnprocessableEntity,
			"?version=0":  http.StatusBadRequest,
			"?version=9":  http.StatusNotFound,
		} {
			d := assertError(t, e.do(t, http.MethodPost, pathRollback+query, bearer(adminKey)), status)
			if status != http.StatusNotFound {
				assert.Equal(t, `"version"`, string(d.Param), "query %q", query)
			} else {
				assert.Contains(t, d.Message, "versions kept: 1-2")
			}
		}

		r := okObject(t, e.do(t, http.MethodPost, pathRollback+"?version=1", bearer(adminKey)))
		assertKeys(t, r, "status", "message", "providers_count", "timestamp", "version", "changed", "source", "hash", "rolled_back_from", "changes")
		assert.True(t, boolean(t, r["changed"]))
		assert.Equal(t, betasync.SourceRollback, str(t, r["source"]))
		assert.InDelta(t, 3, num(t, r["version"]), 0)
		require.Eventually(t, func() bool { return sub.Current().Version == 3 }, waitFor, tick)

		r = okObject(t, e.do(t, http.MethodPost, pathRollback+"?version=1", bearer(adminKey)))
		assert.False(t, boolean(t, r["changed"]))
		assert.NotContains(t, r, "changes", "changed: false carries no changes")
	})

	t.Run("audit", func(t *testing.T) {
		lines := auditLines(t, logs.String())
		require.NotEmpty(t, lines)
		var rollbacks int
		for _, l := range lines {
			assert.NotEmpty(t, l["actor"])
			addr, _ := l["addr"].(string)
			assert.True(t, strings.HasPrefix(addr, "127.0.0.1:"), "from where: %v", l)
			if l["action"] == "rollback" {
				rollbacks++
				assert.Equal(t, "ops", l["actor"])
			}
		}
		assert.Equal(t, 3, rollbacks, "one line per rollback that reached the worker (404, changed, unchanged)")
		for _, key := range []string{masterKey, adminKey, viewerKey} {
			assert.NotContains(t, logs.String(), key, "a key is never logged")
		}
	})
}

// auditLines returns the worker's audit log lines.
func auditLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(log), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "%s", line)
		if m["audit"] == true {
			out = append(out, m)
		}
	}
	return out
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
