package betasync_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/golden"
)

// overrideDoc has a rename, a null, an alias and a section per placement.
const overrideDoc = `{"description": "golden", "provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"},
  "bedrock": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19", "context-1m-2025-08-07": null}}`

func mustParse(t *testing.T, doc string) *betasync.Mapping {
	t.Helper()
	m, err := betasync.Parse([]byte(doc))
	require.NoError(t, err)
	return m
}

func TestCheckOverride(t *testing.T) {
	m := mustParse(t, overrideDoc)
	for _, tt := range []struct {
		name, provider, beta string
		value                *string
		section, err         string // err: a part of the message; "" for success
	}{
		{"section, rename", "bedrock", "context-1m-2025-08-07", new("context-1m"), "bedrock", ""},
		{"section, drop", "anthropic", "context-1m-2025-08-07", nil, "anthropic", ""},
		{"alias resolves to its section", "bedrock_invoke", "new-beta-2026-01-01", new("x"), "bedrock", ""},
		{"unknown provider", "openai", "b", nil, "", `provider "openai" is neither a section nor an alias`},
		{"empty provider", "", "b", nil, "", "provider is empty"},
		{"empty beta", "bedrock", "", nil, "", "is empty"},
		{"padded beta", "bedrock", " b", nil, "", "leading or trailing white space"},
		{"beta with a comma", "bedrock", "a,b", nil, "", "contains a comma"},
		{"empty value", "bedrock", "b", new(""), "", "value is empty"},
		{"value with a comma", "bedrock", "b", new("x,y"), "", "contains a comma"},
		{"value with a newline", "bedrock", "b", new("x\ny"), "", "control character"},
		{"padded value", "bedrock", "b", new("x "), "", "white space"},
		{"long value", "bedrock", "b", new(strings.Repeat("x", 300)), "", "longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			section, err := m.CheckOverride(tt.provider, tt.beta, tt.value)
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.section, section)
				return
			}
			require.Error(t, err)
			assert.Equal(t, betasync.EINVALID, betasync.ErrorCode(err))
			assert.Contains(t, betasync.ErrorMessage(err), tt.err)
		})
	}
}

func TestWithOverridesAndUpstream(t *testing.T) {
	up := mustParse(t, overrideDoc)
	o := betasync.Overrides{}
	o.Set("bedrock", "context-1m-2025-08-07", new("context-1m"))              // null upstream -> renamed
	o.Set("bedrock", "advanced-tool-use-2025-11-20", nil)                     // name upstream -> dropped
	o.Set("anthropic", "new-beta-2026-01-01", new("new-beta-2026-01-01"))     // absent upstream -> added
	o.Set("anthropic", "context-1m-2025-08-07", new("context-1m-2025-08-07")) // agrees: redundant
	o.Set("vertex_ai", "context-1m-2025-08-07", nil)                          // no section: skipped

	merged, err := up.WithOverrides(o)
	require.NoError(t, err)
	eff := merged.Mapping
	name, ok := eff.Lookup("bedrock_invoke", "context-1m-2025-08-07")
	assert.True(t, ok)
	assert.Equal(t, "context-1m", name, "an override wins, through the alias too")
	_, ok = eff.Lookup("bedrock", "advanced-tool-use-2025-11-20")
	assert.False(t, ok, "dropped")
	name, ok = eff.Lookup("anthropic", "new-beta-2026-01-01")
	assert.True(t, ok)
	assert.Equal(t, "new-beta-2026-01-01", name)
	assert.Equal(t, []betasync.OverrideRef{{Provider: "vertex_ai", Beta: "context-1m-2025-08-07"}}, merged.Skipped)
	assert.Equal(t, []betasync.OverrideRef{{Provider: "anthropic", Beta: "context-1m-2025-08-07", Value: new("context-1m-2025-08-07")}},
		merged.Applied.Redundant())
	assert.Equal(t, betasync.AppliedOverride{Value: new("new-beta-2026-01-01"), Absent: true}, merged.Applied["anthropic"]["new-beta-2026-01-01"])
	assert.Equal(t, up.Description(), eff.Description())
	assert.Equal(t, up.Aliases(), eff.Aliases())

	snap := betasync.NewSnapshot(eff, betasync.SourceRemote, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	snap.Overrides = merged.Applied
	back, err := snap.Upstream()
	require.NoError(t, err)
	assert.Equal(t, up.Hash(), back.Hash(), "the upstream document is rebuilt exactly")

	t.Run("merging other overrides over a stored version replaces its own", func(t *testing.T) {
		o2 := betasync.Overrides{}
		o2.Set("bedrock", "context-1m-2025-08-07", nil)
		next, skipped, err := snap.WithOverrides(o2)
		require.NoError(t, err)
		assert.Empty(t, skipped)
		want, err := up.WithOverrides(o2)
		require.NoError(t, err)
		assert.Equal(t, want.Hash(), next.Hash())
		assert.True(t, next.Overrides.Equal(want.Applied))
		assert.Equal(t, snap.FetchedAt, next.FetchedAt, "FetchedAt describes the upstream document")

		none, _, err := snap.WithOverrides(nil)
		require.NoError(t, err)
		assert.Equal(t, up.Hash(), none.Hash(), "no overrides: the upstream document")
		assert.Nil(t, none.Overrides)
	})

	t.Run("an older document re-stored gets the current overrides", func(t *testing.T) {
		// What a rollback does: take a stored version's upstream and
		// merge the overrides in force now.
		older := betasync.NewSnapshot(mustParse(t, `{"bedrock": {"context-1m-2025-08-07": "old-name"}}`), betasync.SourceRemote, time.Time{})
		next, _, err := older.WithOverrides(o)
		require.NoError(t, err)
		name, ok := next.Lookup("bedrock", "context-1m-2025-08-07")
		assert.True(t, ok)
		assert.Equal(t, "context-1m", name)
		assert.Equal(t, new("old-name"), next.Overrides["bedrock"]["context-1m-2025-08-07"].Upstream)
	})
}

func TestSnapshotOverridesRoundTrip(t *testing.T) {
	up := mustParse(t, overrideDoc)
	o := betasync.Overrides{}
	o.Set("bedrock", "context-1m-2025-08-07", new("context-1m"))
	merged, err := up.WithOverrides(o)
	require.NoError(t, err)
	snap := betasync.NewSnapshot(merged.Mapping, betasync.SourceOverride, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	snap.Version, snap.Overrides = 8, merged.Applied

	data, err := json.Marshal(snap)
	require.NoError(t, err)
	golden.Assert(t, "testdata/golden/config_updated_overrides.json", data)

	var back betasync.Snapshot
	require.NoError(t, json.Unmarshal(data, &back))
	assert.True(t, back.SameContent(snap))

	t.Run("overrides that do not match the config are rejected", func(t *testing.T) {
		bad := *snap
		bad.Overrides = betasync.AppliedOverrides{"bedrock": {"context-1m-2025-08-07": {Value: new("other")}}}
		data, err := json.Marshal(bad)
		require.NoError(t, err)
		err = json.Unmarshal(data, new(betasync.Snapshot))
		assert.Equal(t, betasync.EINVALID, betasync.ErrorCode(err), "%v", err)
	})
}

func TestParseOverrideBody(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       *string
		code, msg  string
	}{
		{"name", `{"value": "x"}`, new("x"), "", ""},
		{"null", `{"value": null}`, nil, "", ""},
		{"trailing white space", "{\"value\": null}\n", nil, "", ""},
		{"empty", ``, nil, betasync.EUNPROCESSABLE, "body is required"},
		{"missing value", `{}`, nil, betasync.EUNPROCESSABLE, "value is required"},
		{"unknown field", `{"value": "x", "extra": 1}`, nil, betasync.EINVALID, `unknown field "extra"`},
		{"trailing data", `{"value": "x"} {}`, nil, betasync.EINVALID, "unexpected data"},
		{"not an object", `["x"]`, nil, betasync.EINVALID, "body must be"},
		{"a number", `{"value": 1}`, nil, betasync.EINVALID, "string or null, not a number"},
		{"too big", `{"value": "` + strings.Repeat("x", betasync.MaxOverrideBody) + `"}`, nil, betasync.EINVALID, "larger than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := betasync.ParseOverrideBody([]byte(tt.body))
			if tt.code == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.code, betasync.ErrorCode(err))
			assert.Contains(t, betasync.ErrorMessage(err), tt.msg)
		})
	}
}

// TestOverrideRepliesGolden pins the override commands' replies.
func TestOverrideRepliesGolden(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	o := betasync.Overrides{"bedrock": {"context-1m-2025-08-07": new("context-1m"), "interleaved-thinking-2025-05-14": nil}}
	replies := map[string]any{
		"override_set": betasync.OverrideResult{
			Status: betasync.StatusSuccess, Message: "override set: new version 8", Provider: "bedrock",
			Beta: "context-1m-2025-08-07", Value: new("context-1m"), Overrides: o, Version: 8, Changed: true, Hash: "abc",
			Changes:   betasync.Changes{"bedrock": {Renamed: map[string]betasync.Rename{"context-1m-2025-08-07": {To: "context-1m"}}}},
			Timestamp: at,
		},
		"override_deleted": betasync.OverrideResult{
			Status: betasync.StatusSuccess, Message: "override deleted: new version 9", Provider: "bedrock",
			Beta: "context-1m-2025-08-07", Deleted: true, Overrides: betasync.Overrides{}, Version: 9, Changed: true, Hash: "abd",
			Timestamp: at,
		},
		"override_list": betasync.OverrideList{
			Status: betasync.StatusSuccess, Overrides: o, Version: 8, Hash: "abc",
			Inactive: []betasync.OverrideRef{{Provider: "vertex_ai", Beta: "b"}},
		},
		"reload_redundant": betasync.ReloadResult{
			Status: betasync.StatusSuccess, Message: "anthropic-beta mapping reloaded: new version 10", ProvidersCount: 7,
			Timestamp: at, Version: 10, Changed: true, Source: betasync.SourceRemote, Hash: "abe",
			RedundantOverrides: []betasync.OverrideRef{{Provider: "bedrock", Beta: "interleaved-thinking-2025-05-14"}},
		},
	}
	got, err := json.MarshalIndent(replies, "", "  ")
	require.NoError(t, err)
	golden.Assert(t, "testdata/golden/replies_overrides.json", got)
}
