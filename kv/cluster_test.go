package kv_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
)

// On a 3-node cluster with 3 bucket replicas, JetStream reports a lost
// compare-and-swap with another error code (10164) than on a single server
// (10071). Every conflict the lease, the fence and the mapping rely on must
// still be recognised, from whichever node a replica talks to.
func TestReplicatedBucketsOnACluster(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	ctx := t.Context()
	_, js1 := nodes[0].JetStream(t)
	_, js2 := nodes[1].JetStream(t)

	cfg := kv.Config{Replicas: 3, LockTTL: 2 * time.Second}
	a, err := kv.Ensure(ctx, js1, cfg)
	require.NoError(t, err)
	b, err := kv.Ensure(ctx, js2, cfg)
	require.NoError(t, err, "a second replica ensures the same buckets")

	info, err := js1.KeyValue(ctx, kv.BucketConfig)
	require.NoError(t, err)
	status, err := info.Status(ctx)
	require.NoError(t, err)
	bucket, ok := status.(*jetstream.KeyValueBucketStatus)
	require.True(t, ok)
	assert.Equal(t, 3, bucket.StreamInfo().Config.Replicas)

	t.Run("mapping compare-and-swap", func(t *testing.T) {
		v1, err := a.Mappings.Put(ctx, envelope(t, 1), 0)
		require.NoError(t, err)
		_, err = b.Mappings.Put(ctx, envelope(t, 2), 0)
		assert.Equal(t, betasync.ECONFLICT, betasync.ErrorCode(err), "create over an existing version: %v", err)
		v2, err := b.Mappings.Put(ctx, envelope(t, 2), v1)
		require.NoError(t, err)
		_, err = a.Mappings.Put(ctx, envelope(t, 3), v1)
		assert.Equal(t, betasync.ECONFLICT, betasync.ErrorCode(err), "update at a stale revision: %v", err)
		latest, err := a.Mappings.Latest(ctx)
		require.NoError(t, err)
		assert.Equal(t, v2, latest.Version)
	})

	t.Run("lease and fence", func(t *testing.T) {
		tokenA, err := a.Lease.Acquire(ctx, "a")
		require.NoError(t, err)
		_, err = b.Lease.Acquire(ctx, "b")
		require.ErrorIs(t, err, kv.ErrLeaseHeld)
		renewed, err := a.Lease.Renew(ctx, "a", tokenA)
		require.NoError(t, err)
		_, err = b.Lease.Renew(ctx, "b", tokenA)
		require.ErrorIs(t, err, kv.ErrLeaseLost, "renewal at a stale revision")
		_, err = a.Schedules.Update(ctx, tokenA, func(*kv.Schedule) error { return nil })
		require.NoError(t, err)

		require.NoError(t, a.Lease.Release(ctx, renewed))
		tokenB, err := b.Lease.Acquire(ctx, "b")
		require.NoError(t, err, "released: another replica takes it at once")
		_, err = b.Schedules.Update(ctx, tokenB, func(*kv.Schedule) error { return nil })
		require.NoError(t, err)

		_, err = a.Schedules.Update(ctx, tokenA, func(s *kv.Schedule) error {
			s.IntervalHours = 1
			return nil
		})
		require.ErrorIs(t, err, kv.ErrFenced, "the ex-holder's write is fenced")
		sch, _, err := b.Schedules.Get(ctx)
		require.NoError(t, err)
		assert.Zero(t, sch.IntervalHours)
		assert.Equal(t, tokenB, sch.Fence)
	})
}

// TestSignedWritesOnACluster: signed versions are written with the
// stream's next sequence expected (and the key's revision); on a cluster
// with 3 replicas, of two writers that read the same revision exactly one
// wins, the loser sees a conflict, and every stored version verifies under
// its revision.
func TestSignedWritesOnACluster(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	ctx := t.Context()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	signer, err := betasync.NewSigner(string(seed))
	require.NoError(t, err)
	verifier, err := betasync.NewVerifier(signer.PublicKey())
	require.NoError(t, err)
	cfg := kv.Config{Replicas: 3, LockTTL: 2 * time.Second, Signer: signer, Verifier: verifier}
	_, js1 := nodes[0].JetStream(t)
	_, js2 := nodes[2].JetStream(t)
	a, err := kv.Ensure(ctx, js1, cfg)
	require.NoError(t, err)
	b, err := kv.Ensure(ctx, js2, cfg)
	require.NoError(t, err)

	first, err := a.Mappings.Put(ctx, envelope(t, 0), 0)
	require.NoError(t, err)
	expected := first
	for round := 1; round <= 10; round++ {
		_, errA := a.Mappings.Put(ctx, envelope(t, 2*round), expected)
		_, errB := b.Mappings.Put(ctx, envelope(t, 2*round+1), expected)
		require.NoError(t, errA, "round %d", round)
		assert.Equal(t, betasync.ECONFLICT, betasync.ErrorCode(errB), "round %d: the second writer read the same revision: %v", round, errB)
		latest, err := b.Mappings.Latest(ctx)
		require.NoError(t, err, "the stored version verifies under its revision")
		assert.Equal(t, envelope(t, 2*round).Hash(), latest.Hash())
		assert.Equal(t, signer.PublicKey(), latest.Signer)
		expected = latest.Version
	}
}
