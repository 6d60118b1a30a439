package subscriber_test

import (
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/subscriber"
)

// TestForgedVersionDoesNotOutliveAResync reproduces the outside test: any
// client published a valid mapping as version 2^64-1 and every pod applied
// it, then ignored every legitimate version as stale, until restarted. KV
// is the authority: at the next resync the pods go back to what KV holds,
// and legitimate versions apply again.
func TestForgedVersionDoesNotOutliveAResync(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.JetStream(t)
	store := ensure(t, js)
	v1 := put(t, store, doc(t, 1), 0)

	const resync = 100 * time.Millisecond
	pods := make([]*pod, 3)
	for i := range pods {
		pods[i] = newPod(t, srv.Connect(t), subscriber.WithResyncInterval(resync))
		pods[i].waitVersion(t, v1)
	}

	forger := srv.Connect(t)
	announce(t, forger, doc(t, 666), math.MaxUint64)
	for _, p := range pods {
		p.waitVersion(t, math.MaxUint64) // without signed versions, a forged event is applied...
	}
	for _, p := range pods {
		got := p.waitVersion(t, v1) // ...until the next resync finds KV holds v1
		assert.Equal(t, doc(t, 1).Hash(), got.Hash())
		assert.Equal(t, uint64(1), p.Stats().Corrected)
	}

	v2 := put(t, store, doc(t, 2), v1)
	announce(t, nc, doc(t, 2), v2)
	for _, p := range pods {
		got := p.waitVersion(t, v2)
		assert.Equal(t, doc(t, 2).Hash(), got.Hash(), "legitimate versions apply again")
	}
}

// TestSameVersionOtherContentIsCorrected: a forged event that claims the
// next version number first makes the real announcement of that version
// look like a duplicate; KV tells them apart by content.
func TestSameVersionOtherContentIsCorrected(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.JetStream(t)
	store := ensure(t, js)
	v1 := put(t, store, doc(t, 1), 0)
	p := newPod(t, srv.Connect(t), subscriber.WithResyncInterval(100*time.Millisecond))
	p.waitVersion(t, v1)

	announce(t, srv.Connect(t), doc(t, 666), v1+1) // forged, ahead of the real one
	p.waitVersion(t, v1+1)
	v2 := put(t, store, doc(t, 2), v1)
	require.Equal(t, v1+1, v2)
	announce(t, nc, doc(t, 2), v2) // dismissed as a duplicate...

	require.Eventually(t, func() bool { return p.Current().Hash() == doc(t, 2).Hash() }, waitFor, 10*time.Millisecond,
		"...but the resync replaces the forged content with KV's")
	assert.Equal(t, v2, p.Current().Version)
}

// TestBucketsRecreated: deleting and recreating the buckets restarts
// revisions at 1; pods follow KV back instead of ignoring every new
// version until restarted.
func TestBucketsRecreated(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.JetStream(t)
	store := ensure(t, js)
	var v uint64
	for i := range 5 {
		v = put(t, store, doc(t, i), v)
	}
	p := newPod(t, srv.Connect(t), subscriber.WithResyncInterval(100*time.Millisecond))
	p.waitVersion(t, v)

	require.NoError(t, js.DeleteKeyValue(t.Context(), kv.BucketConfig))
	_, err := js.KeyValue(t.Context(), kv.BucketConfig)
	require.ErrorIs(t, err, jetstream.ErrBucketNotFound)
	store = ensure(t, js)
	v1 := put(t, store, doc(t, 100), 0)
	require.Equal(t, uint64(1), v1)
	announce(t, nc, doc(t, 100), v1)

	got := p.waitVersion(t, v1)
	assert.Equal(t, doc(t, 100).Hash(), got.Hash())
}

// TestKVReadBelowAVersionKVReached: a read that returns less than the
// version in use, when the stream's leader says KV has reached that
// version, is taken for a replica that lags: the pod does not go back at
// once, but reads again, and goes back only if that persists (here it does:
// the stream's last revision is another key's, and the version in use was
// forged; only a deleted or foreign key can make it persist).
func TestKVReadBelowAVersionKVReached(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.JetStream(t)
	store := ensure(t, js)
	v1 := put(t, store, doc(t, 1), 0)
	bucket, err := js.KeyValue(t.Context(), kv.BucketConfig)
	require.NoError(t, err)
	other, err := bucket.Put(t.Context(), "not-the-mapping", []byte("x"))
	require.NoError(t, err)
	p := newPod(t, srv.Connect(t), subscriber.WithResyncInterval(50*time.Millisecond), subscriber.WithConfirmDelay(10*time.Millisecond))
	p.waitVersion(t, v1)

	announce(t, nc, doc(t, 9), other) // forged, at a revision the stream has reached
	p.waitVersion(t, other)
	before := p.Stats().Resyncs
	got := p.waitVersion(t, v1)
	assert.Equal(t, doc(t, 1).Hash(), got.Hash(), "when it persists, the pod goes back to KV's version")
	assert.GreaterOrEqual(t, p.Stats().Resyncs-before, uint64(20), "not at once: it read again, as after a replica that lags")
}
