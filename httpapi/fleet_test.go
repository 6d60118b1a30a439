package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/metrics"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

const pathFleet = "/anthropic_beta_headers/fleet"

// TestFleetEndToEnd: pods on their own connections, a worker whose fleet
// collector is publisher.Fleet, and the API, as the daemon wires them.
func TestFleetEndToEnd(t *testing.T) {
	var s *testbed.Stack
	s = testbed.NewStack(t, testbed.Serve(testbed.DocUpstream), worker.Config{ReplicaID: replicaID, FleetWindow: 300 * time.Millisecond}, worker.Deps{
		Fleet: func(ctx context.Context) ([]betasync.PodStatus, error) {
			return publisher.Fleet(ctx, s.Node.NC, 300*time.Millisecond)
		},
	})
	res, err := s.Worker.Reload(t.Context())
	require.NoError(t, err)
	const n = 4
	var first *subscriber.Subscriber
	for i := range n {
		sub, err := subscriber.New(s.Server.Connect(t), subscriber.WithPodID(fmt.Sprintf("pod-%d", i)))
		require.NoError(t, err)
		t.Cleanup(sub.Close)
		require.NoError(t, sub.WaitReady(t.Context()))
		if first == nil {
			first = sub
		}
	}
	e := &env{api: newAPI(t, s.Client, first, metrics.New())}

	obj := okObject(t, e.do(t, http.MethodGet, pathFleet, bearer(viewerKey)))
	assertKeys(t, obj, "pods", "count", "newest_version", "converged", "lagging", "window_ms", "timestamp")
	var v betasync.FleetView
	require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, pathFleet, bearer(viewerKey)).body, &v))
	assert.Equal(t, n, v.Count)
	assert.True(t, v.Converged)
	assert.Equal(t, res.Version, v.NewestVersion)
	assert.Equal(t, []string{}, v.Lagging)
	assert.Equal(t, int64(300), v.WindowMS)
	require.Len(t, v.Pods, n)
	assert.Equal(t, "pod-0", v.Pods[0].Pod)
	assert.Equal(t, res.Hash, v.Pods[0].Hash)

	// The same body over NATS (`nats req betasync.fleet ''`).
	msg := testbed.Request(t, s.NC, publisher.SubjectFleet, nil)
	var overNATS map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(msg.Data, &overNATS))
	assert.Equal(t, string(obj["count"]), string(overNATS["count"]))
	assert.Equal(t, string(obj["newest_version"]), string(overNATS["newest_version"]))

	assert.Equal(t, http.StatusUnauthorized, e.do(t, http.MethodGet, pathFleet, noKey).status)
	assert.Equal(t, http.StatusUnauthorized, e.do(t, http.MethodGet, pathFleet, bearer("sk-wrong")).status)
	assert.Equal(t, http.StatusOK, e.do(t, http.MethodGet, pathFleet, bearer(adminKey)).status)
	assert.Equal(t, http.StatusMethodNotAllowed, e.do(t, http.MethodPost, pathFleet, bearer(adminKey)).status)
}

// Without a collector (or a worker), the fleet view is unavailable: 503.
func TestFleetUnavailable(t *testing.T) {
	e := setupNoWorker(t)
	r := e.do(t, http.MethodGet, pathFleet, bearer(viewerKey))
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "body: %s", r.body)
}
