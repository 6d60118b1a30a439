package betasync_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/golden"
)

// TestRepliesGolden pins the JSON of every command reply: the HTTP API and
// the micro service send these bodies, and scripts read them.
func TestRepliesGolden(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	next := at.Add(24 * time.Hour)
	hours := 24.0
	replies := map[string]any{
		"reload": betasync.ReloadResult{
			Status: betasync.StatusSuccess, Message: "Anthropic beta headers configuration reloaded successfully! 7 providers updated.",
			Summary: "new version 2", Warnings: []string{"w"}, ProvidersCount: 7, Timestamp: at, Version: 2, Changed: true,
			Source: betasync.SourceRemote, Hash: "abc", URL: "https://example.test/m.json",
		},
		"schedule_set": betasync.ScheduleResult{
			Status: betasync.StatusSuccess, Message: "Anthropic beta headers reload scheduled for every 24 hours",
			IntervalHours: 24, NextRun: &next, Timestamp: at,
		},
		"schedule_cancel": betasync.CancelResult{Status: betasync.StatusSuccess, Message: "Anthropic beta headers reload schedule cancelled", Timestamp: at},
		"status_scheduled": betasync.ScheduleStatus{
			Scheduled: true, IntervalHours: &hours, LastRun: &at, NextRun: &next, LastSuccess: &at,
			LastReload: &at, NextScheduledRun: &next,
			LastError:     &betasync.RunError{Time: at, Message: "fetching: status 502"},
			ConfigVersion: 2, ConfigSource: betasync.SourceRemote, ConfigHash: "abc", LockHolder: "r1",
		},
		"status_empty": betasync.ScheduleStatus{},
		"status_no_worker": betasync.ScheduleStatus{
			Scheduled: true, IntervalHours: &hours, NextScheduledRun: &next, LastReload: &at,
			Warning: "no betasync worker answered: this replica read the status from KV",
		},
		"error": betasync.ErrorReply{Status: betasync.StatusError, Code: betasync.EUPSTREAM, Message: "m", Detail: "m"},
	}
	got, err := json.MarshalIndent(replies, "", "  ")
	require.NoError(t, err)
	golden.Assert(t, "testdata/golden/replies.json", got)
}
