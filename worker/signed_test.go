package worker_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

func signingKey(t *testing.T) (*betasync.Signer, *betasync.Verifier) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	s, err := betasync.NewSigner(string(seed))
	require.NoError(t, err)
	v, err := betasync.NewVerifier(s.PublicKey())
	require.NoError(t, err)
	return s, v
}

// TestSignedVersionsEndToEnd: a worker with a signing key signs every
// version it stores, under the revision it gets; pods that trust the key
// apply those, and reject a forged event (unsigned, or a genuine signed one
// under another version number) and an unsigned entry put into KV, which
// the worker itself replaces at its next reload.
func TestSignedVersionsEndToEnd(t *testing.T) {
	signer, verifier := signingKey(t)
	srv := natstest.Start(t)
	n := testbed.ConnectConfig(t, srv.ClientURL(), kv.Config{LockTTL: time.Second, Signer: signer, Verifier: verifier})
	up := newUpstream(t, serve(docUpstream))
	w := newWorker(t, n, worker.Config{URL: up.URL})
	events := subscribe(t, srv)

	pods := make([]*subscriber.Subscriber, 3)
	for i := range pods {
		p, err := subscriber.New(srv.Connect(t), subscriber.WithVerifier(verifier), subscriber.WithResyncInterval(100*time.Millisecond),
			subscriber.WithPodID("pod-"+string(rune('a'+i))))
		require.NoError(t, err)
		t.Cleanup(p.Close)
		pods[i] = p
	}

	res, err := w.Reload(t.Context())
	require.NoError(t, err)
	ev := events.Next(t)
	assert.Equal(t, res.Version, ev.Version)
	assert.Equal(t, signer.PublicKey(), ev.Signer)
	assert.NoError(t, verifier.Verify(ev), "the event is signed under its version")
	latest, err := n.Store.Mappings.Latest(t.Context())
	require.NoError(t, err, "the stored version verifies under its revision")
	assert.Equal(t, res.Version, latest.Version)
	for _, p := range pods {
		waitFor(t, func() bool { return p.Current().Version == res.Version }, "pods apply signed versions")
	}

	// Forged events: an unsigned mapping as version 2^64-1, and the genuine
	// signed event under another number.
	forger := srv.Connect(t)
	m, err := betasync.Parse([]byte(`{"anthropic": {"forged": "forged"}}`))
	require.NoError(t, err)
	forged := betasync.NewSnapshot(m, betasync.SourceRemote, time.Now())
	forged.Version = math.MaxUint64
	replayed := *ev
	replayed.Version = math.MaxUint64 - 1
	for _, f := range []*betasync.Snapshot{forged, &replayed} {
		b, err := json.Marshal(f)
		require.NoError(t, err)
		require.NoError(t, forger.Publish(publisher.SubjectConfigUpdated, b))
	}
	require.NoError(t, forger.Flush())
	for _, p := range pods {
		waitFor(t, func() bool { return p.Stats().Invalid >= 2 }, "both forged events are rejected")
		assert.Equal(t, res.Version, p.Current().Version, "never applied")
	}

	// An unsigned (but valid) version put straight into KV.
	js, err := jetstream.New(forger)
	require.NoError(t, err)
	bucket, err := js.KeyValue(t.Context(), kv.BucketConfig)
	require.NoError(t, err)
	unsigned := betasync.NewSnapshot(m, betasync.SourceRemote, time.Now())
	b, err := json.Marshal(unsigned)
	require.NoError(t, err)
	poisoned, err := bucket.Put(t.Context(), kv.KeyMapping, b)
	require.NoError(t, err)
	for _, p := range pods {
		before := p.Stats().Invalid
		waitFor(t, func() bool { return p.Stats().Invalid > before }, "the resync rejects the unsigned entry")
		assert.Equal(t, res.Version, p.Current().Version)
	}
	again, err := w.Reload(t.Context())
	require.NoError(t, err)
	assert.True(t, again.Changed, "the worker does not trust the unsigned entry: it stores a signed version over it")
	assert.Greater(t, again.Version, poisoned)
	for _, p := range pods {
		waitFor(t, func() bool { return p.Current().Version == again.Version }, "and the pods apply it")
	}
}
