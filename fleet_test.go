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

// TestFleetGolden pins the pod status (what every pod answers on
// betasync.pod.status) and the fleet view (the fleet command's reply).
func TestFleetGolden(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	fetched := at.Add(-time.Minute)
	pods := []betasync.PodStatus{
		{Pod: "pod-b", Version: 7, Hash: "abc", Source: betasync.SourceRemote, AppliedAt: at, FetchedAt: &fetched},
		{Pod: "pod-a", Version: 6, Hash: "def", Source: betasync.SourceRemote, AppliedAt: at, FetchedAt: &fetched,
			LastRejected: &betasync.Rejection{Version: 8, Reason: `envelope hash "x" does not match its config (abc)`, Via: "event", At: at}},
		{Pod: "pod-c", Version: 0, Hash: "b819", Source: betasync.SourceEmbedded, AppliedAt: at},
	}
	got, err := json.MarshalIndent(map[string]any{
		"pod_status":  pods[1],
		"pod_default": pods[2],
		"fleet":       betasync.NewFleetView(pods, 500*time.Millisecond, at),
		"fleet_empty": betasync.NewFleetView(nil, 500*time.Millisecond, at),
	}, "", "  ")
	require.NoError(t, err)
	golden.Assert(t, "testdata/golden/fleet.json", got)
}

func TestNewFleetView(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pod := func(id string, v uint64) betasync.PodStatus { return betasync.PodStatus{Pod: id, Version: v} }
	tests := []struct {
		name      string
		pods      []betasync.PodStatus
		ids       []string
		newest    uint64
		converged bool
		lagging   []string
	}{
		{"no pods", nil, []string{}, 0, false, []string{}},
		{"one pod", []betasync.PodStatus{pod("a", 3)}, []string{"a"}, 3, true, []string{}},
		{"all on the newest", []betasync.PodStatus{pod("b", 3), pod("a", 3)}, []string{"a", "b"}, 3, true, []string{}},
		{"all on the default", []betasync.PodStatus{pod("b", 0), pod("a", 0)}, []string{"a", "b"}, 0, true, []string{}},
		{"laggards sorted", []betasync.PodStatus{pod("c", 2), pod("a", 3), pod("b", 1)}, []string{"a", "b", "c"}, 3, false, []string{"b", "c"}},
		{"a pod answering twice counts once, at its newest", []betasync.PodStatus{pod("a", 2), pod("b", 3), pod("a", 3)}, []string{"a", "b"}, 3, true, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := betasync.NewFleetView(tt.pods, time.Second, at)
			ids := []string{}
			for _, p := range v.Pods {
				ids = append(ids, p.Pod)
			}
			assert.Equal(t, tt.ids, ids)
			assert.Equal(t, len(tt.ids), v.Count)
			assert.Equal(t, tt.newest, v.NewestVersion)
			assert.Equal(t, tt.converged, v.Converged)
			assert.Equal(t, tt.lagging, v.Lagging)
			assert.Equal(t, int64(1000), v.WindowMS)
		})
	}
}
