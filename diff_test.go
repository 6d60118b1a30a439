package betasync_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

func TestDiff(t *testing.T) {
	old := mustParseDoc(t, `{"anthropic": {"a": "a", "b": "b", "c": "c", "d": null, "e": "e"},
		"bedrock": {"x": "x"}}`)
	new := mustParseDoc(t, `{"anthropic": {"a": "a", "b": null, "c": "c2", "d": "d", "f": "f", "g": null},
		"vertex_ai": {"y": "y"}}`)
	got := betasync.Diff(old, new)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"anthropic": {
			"added": {"f": "f", "g": null},
			"removed": ["e"],
			"unsupported": ["b"],
			"renamed": {"c": {"from": "c", "to": "c2"}, "d": {"from": null, "to": "d"}}
		},
		"bedrock": {"removed": ["x"]},
		"vertex_ai": {"added": {"y": "y"}}
	}`, string(b))

	t.Run("no change", func(t *testing.T) {
		assert.Empty(t, betasync.Diff(old, old))
		described := mustParseDoc(t, `{"description": "other", "anthropic": {"a": "a", "b": "b", "c": "c", "d": null, "e": "e"}, "bedrock": {"x": "x"}}`)
		assert.Empty(t, betasync.Diff(old, described), "only betas count")
	})
	t.Run("from nothing", func(t *testing.T) {
		d := betasync.Diff(nil, old)
		assert.Len(t, d["anthropic"].Added, 5)
	})
}

func TestActor(t *testing.T) {
	_, ok := betasync.ActorFrom(t.Context())
	assert.False(t, ok)
	ctx := betasync.WithActor(t.Context(), betasync.Actor{Name: "ops", Addr: "10.0.0.1:5555"})
	a, ok := betasync.ActorFrom(ctx)
	require.True(t, ok)
	assert.Equal(t, betasync.Actor{Name: "ops", Addr: "10.0.0.1:5555"}, a)
}
