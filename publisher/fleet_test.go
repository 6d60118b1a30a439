package publisher_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/publisher"
)

// TestFleetCollector: junk and anonymous answers are skipped, and a pod that
// answers twice counts once, at its newest version.
func TestFleetCollector(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	responder := srv.Connect(t)
	_, err := responder.Subscribe(publisher.SubjectPodStatus, func(m *nats.Msg) {
		for _, answer := range []string{
			`not json`,
			`{"version": 9}`,
			`{"pod": "a", "version": 1}`,
			`{"pod": "a", "version": 2}`,
			`{"pod": "a", "version": 1}`,
			`{"pod": "b", "version": 2}`,
		} {
			_ = m.Respond([]byte(answer))
		}
	})
	require.NoError(t, err)
	require.NoError(t, responder.Flush())

	pods, err := publisher.Fleet(t.Context(), nc, 200*time.Millisecond)
	require.NoError(t, err)
	v := betasync.NewFleetView(pods, 200*time.Millisecond, time.Now())
	require.Equal(t, 2, v.Count)
	assert.Equal(t, uint64(2), v.Pods[0].Version)
	assert.True(t, v.Converged)
}

func TestFleetCollectorNoPods(t *testing.T) {
	srv := natstest.Start(t)
	pods, err := publisher.Fleet(t.Context(), srv.Connect(t), 50*time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, pods)
}

func TestFleetCollectorNotConnected(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	nc.Close()
	_, err := publisher.Fleet(t.Context(), nc, 50*time.Millisecond)
	assert.Equal(t, betasync.EUNAVAILABLE, betasync.ErrorCode(err), "err: %v", err)
}
