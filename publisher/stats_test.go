package publisher_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
)

// TestMicroStatsCountErrors: `nats micro stats` reads $SRV.STATS; failed
// replies must show there, and `nats micro ls` ($SRV.INFO) must tell the
// replicas apart.
func TestMicroStatsCountErrors(t *testing.T) {
	srv := natstest.Start(t)
	cmds := &testbed.Commands{}
	cmds.Fail(betasync.Errorf(betasync.EUPSTREAM, "fetching: status 502"))
	svc := testbed.ServeCommands(t, srv.Connect(t), cmds, "replica-a")
	client := publisher.NewClient(srv.Connect(t))

	_, err := client.Reload(t.Context())
	testbed.RequireCode(t, err, betasync.EUPSTREAM)

	nc := srv.Connect(t)
	msg, err := nc.RequestWithContext(t.Context(), "$SRV.STATS.betasync", nil)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(msg.Data, &stats))
	var reload *micro.EndpointStats
	for _, e := range stats.Endpoints {
		if e.Name == "reload" {
			reload = e
		}
	}
	require.NotNil(t, reload)
	assert.Equal(t, 1, reload.NumRequests)
	assert.Equal(t, 1, reload.NumErrors, "a failed reply, sent after the handler returned, is counted")
	assert.Equal(t, "502:fetching: status 502", reload.LastError, "micro's code:description")
	assert.Equal(t, "q", reload.QueueGroup)
	assert.Positive(t, reload.ProcessingTime, "the command's time is counted, not the handler's")
	assert.Equal(t, reload.ProcessingTime, reload.AverageProcessingTime)

	// A success is counted as a request, not an error.
	cmds.Fail(nil)
	_, err = client.Reload(t.Context())
	require.NoError(t, err)
	stats = svc.Stats()
	for _, e := range stats.Endpoints {
		if e.Name == "reload" {
			assert.Equal(t, 2, e.NumRequests)
			assert.Equal(t, 1, e.NumErrors)
		}
	}

	msg, err = nc.RequestWithContext(t.Context(), "$SRV.INFO.betasync", nil)
	require.NoError(t, err)
	var info micro.Info
	require.NoError(t, json.Unmarshal(msg.Data, &info))
	assert.Contains(t, info.Description, "replica-a", "nats micro ls shows the description")
	assert.Equal(t, "replica-a", info.Metadata["replica"])

	require.NoError(t, svc.Stop())
}

// A command refused at once (too many in flight) is counted as an error
// too.
func TestMicroStatsCountRefusals(t *testing.T) {
	srv := natstest.Start(t)
	cmds := &testbed.Commands{Block: make(chan struct{})}
	svc, err := publisher.Serve(srv.Connect(t), cmds, publisher.ServiceConfig{ReplicaID: "r1", MaxInFlight: 1})
	require.NoError(t, err)
	t.Cleanup(func() { close(cmds.Block); assert.NoError(t, svc.Stop()) })
	nc := srv.Connect(t)
	require.NoError(t, nc.PublishRequest("betasync.schedule.status", nc.NewRespInbox(), nil)) // holds the one slot
	require.Eventually(t, func() bool { return cmds.Calls.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	msg, err := nc.RequestWithContext(t.Context(), "betasync.schedule.status", nil)
	require.NoError(t, err)
	assert.Equal(t, "503", msg.Header.Get(micro.ErrorCodeHeader))

	msg, err = nc.RequestWithContext(t.Context(), "$SRV.STATS.betasync", nil)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(msg.Data, &stats))
	for _, e := range stats.Endpoints {
		if e.Name == "schedule_status" {
			assert.Equal(t, 1, e.NumErrors)
			assert.Contains(t, e.LastError, "too many commands in flight")
		}
	}
}
