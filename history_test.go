package betasync_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/golden"
)

// historyDoc is a small mapping with a rename, a null and an alias.
var historyDoc = []byte(`{"description": "golden", "provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"},
  "bedrock": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19", "context-1m-2025-08-07": null}}`)

func historySnapshot(t *testing.T) *betasync.Snapshot {
	t.Helper()
	m, err := betasync.Parse(historyDoc)
	require.NoError(t, err)
	s := betasync.NewSnapshot(m, betasync.SourceRollback, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	s.Version, s.URL = 9, "https://example.test/m.json"
	s.Actor, s.RolledBackFrom = "ops-alice", 7
	name := "tool-search-tool-2025-10-19"
	s.Changes = betasync.Changes{
		"anthropic": {Removed: []string{"interleaved-thinking-2025-05-14"}},
		"bedrock": {
			Added:       map[string]*string{"advanced-tool-use-2025-11-20": &name},
			Unsupported: []string{"context-1m-2025-08-07"},
		},
	}
	return s
}

// TestEnvelopeWithHistoryGolden pins the envelope of a version that carries
// who produced it, what it rolled back to and what it changed (on
// config.updated and, without version, in KV).
func TestEnvelopeWithHistoryGolden(t *testing.T) {
	s := historySnapshot(t)
	got, err := json.Marshal(s)
	require.NoError(t, err)
	golden.Assert(t, "testdata/golden/config_updated_history.json", got)

	var back betasync.Snapshot
	require.NoError(t, json.Unmarshal(got, &back))
	assert.Equal(t, s.Actor, back.Actor)
	assert.Equal(t, s.RolledBackFrom, back.RolledBackFrom)
	assert.Equal(t, s.Changes, back.Changes)
	assert.Equal(t, s.Version, back.Version)
}

// TestHistoryRepliesGolden pins the JSON of the history, history version
// and rollback replies, and of a reload reply that carries changes.
func TestHistoryRepliesGolden(t *testing.T) {
	s := historySnapshot(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	first := *s
	first.Version, first.Source, first.Actor, first.RolledBackFrom, first.Changes = 1, betasync.SourceEmbedded, "startup", 0, nil
	replies := map[string]any{
		"history": betasync.HistoryResult{
			Status: betasync.StatusSuccess, Current: 9, Kept: []uint64{1, 2, 9}, Count: 2,
			Versions: []betasync.HistoryEntry{betasync.EntryOf(s), betasync.EntryOf(&first)},
		},
		"rollback": betasync.RollbackResult{
			Status: betasync.StatusSuccess, Message: "anthropic-beta mapping rolled back to version 7: new version 9",
			ProvidersCount: 2, Timestamp: at, Version: 9, Changed: true, Source: betasync.SourceRollback,
			Hash: s.Hash(), RolledBackFrom: 7, Changes: s.Changes,
		},
		"rollback_unchanged": betasync.RollbackResult{
			Status: betasync.StatusSuccess, Message: "anthropic-beta mapping already has version 7's document: version 9 unchanged",
			ProvidersCount: 2, Timestamp: at, Version: 9, Source: betasync.SourceRollback, Hash: s.Hash(), RolledBackFrom: 7,
		},
		"reload_changes": betasync.ReloadResult{
			Status: betasync.StatusSuccess, Message: "anthropic-beta mapping reloaded: new version 10",
			ProvidersCount: 2, Timestamp: at, Version: 10, Changed: true, Source: betasync.SourceRemote,
			Hash: "abc", Changes: s.Changes,
		},
	}
	got, err := json.MarshalIndent(replies, "", "  ")
	require.NoError(t, err)
	golden.Assert(t, "testdata/golden/history_replies.json", got)
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name, in string
		want     uint64
		code     string
	}{
		{"number", "7", 7, ""},
		{"spaces", " 7 ", 7, ""},
		{"missing", "", 0, betasync.EUNPROCESSABLE},
		{"null", "null", 0, betasync.EUNPROCESSABLE},
		{"not a number", "seven", 0, betasync.EUNPROCESSABLE},
		{"negative", "-1", 0, betasync.EUNPROCESSABLE},
		{"fraction", "1.5", 0, betasync.EUNPROCESSABLE},
		{"zero", "0", 0, betasync.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := betasync.ParseVersion(tt.in)
			assert.Equal(t, tt.code, betasync.ErrorCode(err))
			assert.Equal(t, tt.want, v)
			if err != nil {
				assert.Contains(t, betasync.ErrorMessage(err), "version")
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	for in, code := range map[string]string{"": "", "5": "", "0": "", "x": betasync.EUNPROCESSABLE, "-1": betasync.EINVALID} {
		_, err := betasync.ParseLimit(in)
		assert.Equal(t, code, betasync.ErrorCode(err), "limit %q", in)
	}
}

func TestVersionRanges(t *testing.T) {
	assert.Empty(t, betasync.VersionRanges(nil))
	assert.Equal(t, "4", betasync.VersionRanges([]uint64{4}))
	assert.Equal(t, "3, 5-7, 9-10", betasync.VersionRanges([]uint64{3, 5, 6, 7, 9, 10}))
	err := betasync.NotKept(2, "5-7")
	assert.Equal(t, betasync.ENOTFOUND, betasync.ErrorCode(err))
	assert.Contains(t, betasync.ErrorMessage(err), "versions kept: 5-7")
}
