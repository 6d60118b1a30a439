package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

// The daemon's own subscriber answers the fleet query under the replica id,
// and the window is BETASYNC_FLEET_WINDOW.
func TestDaemonFleetView(t *testing.T) {
	d := startDaemon(t, map[string]string{"BETASYNC_REPLICA_ID": "replica-a", "BETASYNC_FLEET_WINDOW": "200ms"})
	var reload betasync.ReloadResult
	require.Equal(t, http.StatusOK, d.call(t, http.MethodPost, "/reload/anthropic_beta_headers", &reload))

	var v betasync.FleetView
	require.Eventually(t, func() bool {
		return d.call(t, http.MethodGet, "/anthropic_beta_headers/fleet", &v) == http.StatusOK && v.Count == 1 && v.NewestVersion == reload.Version
	}, 10*time.Second, 20*time.Millisecond, "the daemon's own pod serves version %d", reload.Version)
	assert.Equal(t, "replica-a", v.Pods[0].Pod)
	assert.True(t, v.Converged)
	assert.Equal(t, int64(200), v.WindowMS)
}
