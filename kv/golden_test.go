package kv_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/golden"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
)

// TestStoredMappingGolden pins the bytes stored under betasync_config/mapping:
// `nats kv get` users and pods in other languages read them.
func TestStoredMappingGolden(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	store, err := kv.Ensure(t.Context(), js, kv.Config{})
	require.NoError(t, err)

	m, err := betasync.Parse([]byte(`{"description": "golden", "provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"},
  "bedrock": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19", "context-1m-2025-08-07": null}}`))
	require.NoError(t, err)
	env := betasync.NewSnapshot(m, betasync.SourceRemote, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	env.Version, env.URL, env.ETag, env.LastModified = 7, "https://example.test/m.json", `"e1"`, "Sun, 01 Mar 2026 11:00:00 GMT"
	rev, err := store.Mappings.Put(t.Context(), env, 0)
	require.NoError(t, err)

	bucket, err := js.KeyValue(t.Context(), "betasync_config")
	require.NoError(t, err)
	e, err := bucket.Get(t.Context(), "mapping")
	require.NoError(t, err)
	require.Equal(t, rev, e.Revision())
	require.Equal(t, jetstream.KeyValuePut, e.Operation())
	golden.Assert(t, "../testdata/golden/kv_mapping.json", e.Value())
}
