package subscriber_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
)

// TestBeaconFlood: anyone allowed to publish config.current can forge
// beacons. A flood of them (versions far ahead, the version in use with
// another hash, garbage) costs the pod at most one KV read a second, and
// never moves it off the version KV holds.
func TestBeaconFlood(t *testing.T) {
	nc, _, v1, p := beaconed(t)
	held := p.Current()
	require.Equal(t, v1, held.Version)
	before := p.Stats().Resyncs

	start := time.Now()
	const forged = 20000
	for i := range forged {
		var data []byte
		switch i % 3 {
		case 0:
			data = fmt.Appendf(nil, `{"version":%d,"hash":"%064x"}`, v1+1+uint64(i), i)
		case 1:
			data = fmt.Appendf(nil, `{"version":%d,"hash":"%064x"}`, v1, i)
		default:
			data = []byte(`{"version":`)
		}
		require.NoError(t, nc.Publish(publisher.SubjectConfigCurrent, data))
	}
	require.NoError(t, nc.Flush())
	// Let the last ones arrive and any read they caused finish.
	time.Sleep(1500 * time.Millisecond)
	elapsed := time.Since(start)

	reads := p.Stats().Resyncs - before
	assert.Positive(t, reads, "a beacon naming another version makes the pod read KV")
	assert.LessOrEqual(t, reads, uint64(elapsed/time.Second)+2, "at most one read a second, however many beacons (%d in %v)", forged, elapsed)
	assert.Same(t, held, p.Current(), "KV's version stays in use")
	assert.Zero(t, p.Stats().Corrected)
}

// TestBeaconHeldBackIsNotLost: a beacon that arrives within a second of
// the last read a beacon caused is acted on a second after it, not
// dropped: the pod still catches up with no further beacon.
func TestBeaconHeldBackIsNotLost(t *testing.T) {
	nc, store, v1, p := beaconed(t)
	reads := p.Stats().Resyncs

	// A forged beacon: the pod reads KV and keeps v1.
	require.NoError(t, publisher.PublishBeacon(nc, v1, "forged"))
	require.Eventually(t, func() bool { return p.Stats().Resyncs > reads }, waitFor, time.Millisecond)
	// At once a real version, whose announcement the pod misses, and its
	// one beacon: inside the one-a-second limit.
	v2 := put(t, store, doc(t, 2), v1)
	stored, err := store.Latest(t.Context())
	require.NoError(t, err)
	require.NoError(t, publisher.PublishBeacon(nc, v2, stored.Hash()))
	assert.Equal(t, v2, p.waitVersion(t, v2).Version, "read a second after the last, not dropped")
}

// beaconed stores version v1 and starts a pod whose resync is an hour
// away, so only beacons make it read KV; nc publishes them.
func beaconed(t *testing.T) (nc *nats.Conn, store *kv.Mappings, v1 uint64, p *pod) {
	t.Helper()
	srv := natstest.Start(t)
	nc = srv.Connect(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	store = ensure(t, js)
	v1 = put(t, store, doc(t, 1), 0)
	p = newPod(t, srv.Connect(t), subscriber.WithResyncInterval(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, p.WaitReady(ctx))
	return nc, store, v1, p
}
