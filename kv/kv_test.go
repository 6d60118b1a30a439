package kv_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
)

// newStore starts a real embedded server and ensures the buckets on it.
func newStore(t *testing.T, cfg kv.Config) (*kv.Store, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	st, err := kv.Ensure(t.Context(), js, cfg)
	require.NoError(t, err)
	return st, js
}

// envelope returns a valid envelope whose document differs for every n.
func envelope(t *testing.T, n int) *betasync.Snapshot {
	t.Helper()
	doc := fmt.Sprintf(`{"anthropic": {"beta-%d": "beta-%d"}}`, n, n)
	m, err := betasync.Parse([]byte(doc))
	require.NoError(t, err)
	return betasync.NewSnapshot(m, betasync.SourceRemote, time.Date(2026, 3, 1, 12, 0, n, 0, time.UTC))
}

func TestEnsureValidatesConfig(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	tests := []struct {
		name string
		cfg  kv.Config
		ok   bool
	}{
		{name: "defaults", cfg: kv.Config{}, ok: true},
		{name: "history 32", cfg: kv.Config{History: 32}, ok: true},
		{name: "history below 32", cfg: kv.Config{History: 31}},
		{name: "history above 64", cfg: kv.Config{History: 65}},
		{name: "lock TTL below 1s", cfg: kv.Config{LockTTL: 500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := kv.Ensure(t.Context(), js, tt.cfg)
			if !tt.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, st.Mappings)
			assert.NotNil(t, st.Schedules)
			assert.NotNil(t, st.Lease)
		})
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	ctx := t.Context()
	st, err := kv.Ensure(ctx, js, kv.Config{LockTTL: time.Second})
	require.NoError(t, err)
	rev, err := st.Mappings.Put(ctx, envelope(t, 1), 0)
	require.NoError(t, err)

	again, err := kv.Ensure(ctx, js, kv.Config{LockTTL: 2 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, again.Lease.TTL())
	latest, err := again.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, rev, latest.Version, "re-ensuring the buckets keeps what they hold")
}

func TestMappings(t *testing.T) {
	st, js := newStore(t, kv.Config{})
	ctx := t.Context()

	_, err := st.Mappings.Latest(ctx)
	assert.Equal(t, betasync.ENOTFOUND, betasync.ErrorCode(err), "nothing stored yet: %v", err)
	hist, err := st.Mappings.History(ctx)
	require.NoError(t, err)
	assert.Empty(t, hist)

	first := envelope(t, 1)
	first.Version = 99 // ignored: the revision is the version
	first.ETag = `"v1"`
	v1, err := st.Mappings.Put(ctx, first, 0)
	require.NoError(t, err)

	latest, err := st.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, v1, latest.Version)
	assert.Equal(t, first.Hash(), latest.Hash())
	assert.Equal(t, `"v1"`, latest.ETag)
	assert.True(t, first.FetchedAt.Equal(latest.FetchedAt))
	assert.Equal(t, []string{"anthropic"}, latest.Providers(), "the stored envelope carries a valid, hash-checked mapping")

	t.Run("stored without the version", func(t *testing.T) {
		e, err := js.KeyValue(ctx, kv.BucketConfig)
		require.NoError(t, err)
		raw, err := e.Get(ctx, kv.KeyMapping)
		require.NoError(t, err)
		var stored map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw.Value(), &stored))
		assert.NotContains(t, stored, "version")
	})

	t.Run("create when one exists", func(t *testing.T) {
		_, err := st.Mappings.Put(ctx, envelope(t, 2), 0)
		assert.Equal(t, betasync.ECONFLICT, betasync.ErrorCode(err), "error: %v", err)
	})

	v2, err := st.Mappings.Put(ctx, envelope(t, 2), v1)
	require.NoError(t, err)
	assert.Greater(t, v2, v1)

	t.Run("stale expected revision", func(t *testing.T) {
		_, err := st.Mappings.Put(ctx, envelope(t, 3), v1)
		assert.Equal(t, betasync.ECONFLICT, betasync.ErrorCode(err), "error: %v", err)
		latest, err := st.Mappings.Latest(ctx)
		require.NoError(t, err)
		assert.Equal(t, v2, latest.Version, "a lost race writes nothing")
		assert.Equal(t, envelope(t, 2).Hash(), latest.Hash())
	})

	t.Run("history oldest first", func(t *testing.T) {
		hist, err := st.Mappings.History(ctx)
		require.NoError(t, err)
		require.Len(t, hist, 2)
		assert.Equal(t, v1, hist[0].Version)
		assert.Equal(t, v2, hist[1].Version)
		assert.Equal(t, envelope(t, 1).Hash(), hist[0].Hash())
	})
}

func TestMappingsCorruptEntry(t *testing.T) {
	st, js := newStore(t, kv.Config{})
	ctx := t.Context()
	v1, err := st.Mappings.Put(ctx, envelope(t, 1), 0)
	require.NoError(t, err)
	bucket, err := js.KeyValue(ctx, kv.BucketConfig)
	require.NoError(t, err)
	garbage, err := bucket.Put(ctx, kv.KeyMapping, []byte("not an envelope"))
	require.NoError(t, err)

	_, err = st.Mappings.Latest(ctx)
	require.ErrorIs(t, err, kv.ErrCorrupt)
	assert.Contains(t, err.Error(), fmt.Sprint(garbage), "the error names the revision")
	corrupt, ok := errors.AsType[*kv.CorruptError](err)
	require.True(t, ok)
	assert.Equal(t, garbage, corrupt.Revision, "only the revision is known")

	_, err = st.Mappings.Put(ctx, envelope(t, 2), v1)
	assert.Equal(t, betasync.ECONFLICT, betasync.ErrorCode(err), "the corrupt entry is a version like any other: %v", err)
	v3, err := st.Mappings.Put(ctx, envelope(t, 3), corrupt.Revision)
	require.NoError(t, err, "a valid version can be stored over it")
	latest, err := st.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, v3, latest.Version)
	assert.Equal(t, envelope(t, 3).Hash(), latest.Hash())

	hist, err := st.Mappings.History(ctx)
	require.NoError(t, err, "the corrupt entry in the history does not break it")
	require.Len(t, hist, 2)
	assert.Equal(t, v1, hist[0].Version)
	assert.Equal(t, v3, hist[1].Version)
}

// TestMappingsPutLargerThanMaxPayload runs its own server, with a small
// max_payload, so that a valid mapping is too big for it.
func TestMappingsPutLargerThanMaxPayload(t *testing.T) {
	const maxPayload = 16 << 10
	srv := natstest.StartWithMaxPayload(t, maxPayload)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := t.Context()
	st, err := kv.Ensure(ctx, js, kv.Config{})
	require.NoError(t, err)

	var doc strings.Builder
	doc.WriteString(`{"anthropic": {`)
	for i := range 1000 {
		if i > 0 {
			doc.WriteString(", ")
		}
		fmt.Fprintf(&doc, `"beta-%04d": "beta-%04d"`, i, i)
	}
	doc.WriteString(`}}`)
	m, err := betasync.Parse([]byte(doc.String()))
	require.NoError(t, err)
	big := betasync.NewSnapshot(m, betasync.SourceRemote, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	raw, err := json.Marshal(big)
	require.NoError(t, err)
	require.Greater(t, len(raw), maxPayload, "the test mapping must exceed max_payload")

	tests := []struct {
		name     string
		expected func(t *testing.T) uint64
	}{
		{name: "first version", expected: func(*testing.T) uint64 { return 0 }},
		{name: "over a stored version", expected: func(t *testing.T) uint64 {
			rev, err := st.Mappings.Put(ctx, envelope(t, 1), 0)
			require.NoError(t, err)
			return rev
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expected := tt.expected(t)
			_, err := st.Mappings.Put(ctx, big, expected)
			require.Error(t, err)
			assert.Equal(t, betasync.EUPSTREAM, betasync.ErrorCode(err), "error: %v", err)
			msg := betasync.ErrorMessage(err)
			assert.Contains(t, msg, fmt.Sprintf("the mapping envelope is %d bytes", len(raw)))
			assert.Contains(t, msg, fmt.Sprintf("max_payload (%d bytes)", maxPayload))
			assert.Contains(t, msg, "raise max_payload")
			latest, err := st.Mappings.Latest(ctx)
			if expected == 0 {
				assert.Equal(t, betasync.ENOTFOUND, betasync.ErrorCode(err), "nothing was stored: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, expected, latest.Version, "nothing was stored")
		})
	}
}

func TestMappingsHistoryKeepsAtLeast32(t *testing.T) {
	tests := []struct {
		name    string
		history int
		puts    int
		want    int
	}{
		{name: "minimum history", history: 32, puts: 40, want: 32},
		{name: "default history", history: 0, puts: 40, want: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := newStore(t, kv.Config{History: tt.history})
			ctx := t.Context()
			var rev uint64
			for i := range tt.puts {
				next, err := st.Mappings.Put(ctx, envelope(t, i), rev)
				require.NoError(t, err)
				rev = next
			}
			hist, err := st.Mappings.History(ctx)
			require.NoError(t, err)
			require.Len(t, hist, tt.want)
			assert.Equal(t, rev, hist[len(hist)-1].Version, "the newest version is last")
			assert.Equal(t, envelope(t, tt.puts-tt.want).Hash(), hist[0].Hash(), "the oldest kept version")
		})
	}
}

func TestSchedulesGetUpdate(t *testing.T) {
	st, _ := newStore(t, kv.Config{})
	ctx := t.Context()

	sch, rev, err := st.Schedules.Get(ctx)
	require.NoError(t, err)
	assert.Zero(t, rev)
	assert.Equal(t, kv.Schedule{}, sch)

	next := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	got, err := st.Schedules.Update(ctx, 0, func(s *kv.Schedule) error {
		s.IntervalHours = 1
		s.NextRun = &next
		return nil
	})
	require.NoError(t, err)
	assert.InDelta(t, 1.0, got.IntervalHours, 0)
	assert.Zero(t, got.Fence, "an unfenced write leaves the fence alone")

	sch, rev, err = st.Schedules.Get(ctx)
	require.NoError(t, err)
	assert.NotZero(t, rev)
	assert.InDelta(t, 1.0, sch.IntervalHours, 0)
	require.NotNil(t, sch.NextRun)
	assert.True(t, next.Equal(*sch.NextRun))

	t.Run("fn aborts without writing", func(t *testing.T) {
		abort := fmt.Errorf("abort")
		_, err := st.Schedules.Update(ctx, 0, func(s *kv.Schedule) error {
			s.IntervalHours = 5
			return abort
		})
		require.ErrorIs(t, err, abort)
		after, afterRev, err := st.Schedules.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, rev, afterRev)
		assert.InDelta(t, 1.0, after.IntervalHours, 0)
	})
}

func TestSchedulesUpdateConcurrentWriters(t *testing.T) {
	st, _ := newStore(t, kv.Config{})
	ctx := t.Context()
	const writers = 20
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range writers {
		wg.Go(func() {
			<-start
			_, err := st.Schedules.Update(ctx, 0, func(s *kv.Schedule) error {
				s.Failures++
				return nil
			})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	sch, _, err := st.Schedules.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, writers, sch.Failures, "every increment survives the compare-and-swap races")
}

func TestSchedulesFencedWrite(t *testing.T) {
	st, _ := newStore(t, kv.Config{LockTTL: time.Second})
	ctx := t.Context()

	tokenA, err := st.Lease.Acquire(ctx, "a")
	require.NoError(t, err)
	sch, err := st.Schedules.Update(ctx, tokenA, func(s *kv.Schedule) error {
		s.IntervalHours = 1
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, tokenA, sch.Fence, "a fenced write stamps the holder's token")

	// A stalls; B takes over once A's lease is gone (released here, for speed;
	// TestLeaseExpires covers the TTL) and stamps its newer token.
	require.NoError(t, st.Lease.Release(ctx, tokenA))
	tokenB, err := st.Lease.Acquire(ctx, "b")
	require.NoError(t, err)
	require.Greater(t, tokenB, tokenA)
	_, err = st.Schedules.Update(ctx, tokenB, func(*kv.Schedule) error { return nil })
	require.NoError(t, err)
	_, before, err := st.Schedules.Get(ctx)
	require.NoError(t, err)

	called := false
	_, err = st.Schedules.Update(ctx, tokenA, func(s *kv.Schedule) error {
		called = true
		s.IntervalHours = 99
		return nil
	})
	require.ErrorIs(t, err, kv.ErrFenced)
	assert.Equal(t, betasync.ECONFLICT, betasync.ErrorCode(err))
	assert.False(t, called, "a fenced-out holder's change is never applied")

	after, afterRev, err := st.Schedules.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, before, afterRev, "the fenced write wrote nothing")
	assert.Equal(t, tokenB, after.Fence)
	assert.InDelta(t, 1.0, after.IntervalHours, 0)

	t.Run("unfenced writes still pass", func(t *testing.T) {
		got, err := st.Schedules.Update(ctx, 0, func(s *kv.Schedule) error {
			s.IntervalHours = 2
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, tokenB, got.Fence, "a manual command keeps the holder's fence")
	})
	t.Run("the newest holder keeps writing", func(t *testing.T) {
		_, err := st.Schedules.Update(ctx, tokenB, func(s *kv.Schedule) error {
			s.Failures = 1
			return nil
		})
		assert.NoError(t, err)
	})
}

func TestLease(t *testing.T) {
	st, _ := newStore(t, kv.Config{LockTTL: time.Second})
	ctx := t.Context()
	l := st.Lease
	assert.Equal(t, time.Second, l.TTL())

	holder, err := l.Holder(ctx)
	require.NoError(t, err)
	assert.Empty(t, holder)

	rev, err := l.Acquire(ctx, "a")
	require.NoError(t, err)
	assert.NotZero(t, rev)
	holder, err = l.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, "a", holder)

	t.Run("held", func(t *testing.T) {
		_, err := l.Acquire(ctx, "b")
		require.ErrorIs(t, err, kv.ErrLeaseHeld)
		_, err = l.Acquire(ctx, "a")
		assert.ErrorIs(t, err, kv.ErrLeaseHeld, "acquiring is not re-entrant")
	})

	renewed, err := l.Renew(ctx, "a", rev)
	require.NoError(t, err)
	assert.Greater(t, renewed, rev)

	t.Run("renew at a stale revision", func(t *testing.T) {
		_, err := l.Renew(ctx, "a", rev)
		assert.ErrorIs(t, err, kv.ErrLeaseLost)
	})
	t.Run("release at a stale revision keeps the lease", func(t *testing.T) {
		require.ErrorIs(t, l.Release(ctx, rev), kv.ErrLeaseLost)
		holder, err := l.Holder(ctx)
		require.NoError(t, err)
		assert.Equal(t, "a", holder)
	})

	require.NoError(t, l.Release(ctx, renewed))
	holder, err = l.Holder(ctx)
	require.NoError(t, err)
	assert.Empty(t, holder)

	t.Run("release twice", func(t *testing.T) {
		assert.ErrorIs(t, l.Release(ctx, renewed), kv.ErrLeaseLost)
	})
	t.Run("renew after release", func(t *testing.T) {
		_, err := l.Renew(ctx, "a", renewed)
		assert.ErrorIs(t, err, kv.ErrLeaseLost)
	})

	revB, err := l.Acquire(ctx, "b")
	require.NoError(t, err, "a released lease is free at once")
	assert.Greater(t, revB, renewed, "fencing tokens only grow")
	holder, err = l.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", holder)
}

func TestLeaseExpires(t *testing.T) {
	st, _ := newStore(t, kv.Config{LockTTL: time.Second})
	ctx := t.Context()
	l := st.Lease

	revA, err := l.Acquire(ctx, "a")
	require.NoError(t, err)
	_, err = l.Acquire(ctx, "b")
	require.ErrorIs(t, err, kv.ErrLeaseHeld)

	// A stops renewing. B gets the lease once the TTL has passed.
	var revB uint64
	require.Eventually(t, func() bool {
		rev, err := l.Acquire(ctx, "b")
		if err != nil {
			return false
		}
		revB = rev
		return true
	}, 10*time.Second, 50*time.Millisecond)
	assert.Greater(t, revB, revA)
	holder, err := l.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", holder)

	_, err = l.Renew(ctx, "a", revA)
	require.ErrorIs(t, err, kv.ErrLeaseLost, "the old holder learns it lost the lease")
	require.ErrorIs(t, l.Release(ctx, revA), kv.ErrLeaseLost, "a lost lease is not released")
	holder, err = l.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", holder, "the old holder's release does not free the new holder's lease")

}

// Renewals keep the lease past its TTL. Its own store, acquired right here:
// the lease of the test above may be close to its TTL by now. Renewals come
// every TTL/6, so only a stall of most of the TTL could fail this.
func TestLeaseRenewalsKeepItPastTheTTL(t *testing.T) {
	st, _ := newStore(t, kv.Config{LockTTL: 2 * time.Second})
	ctx := t.Context()
	l := st.Lease
	rev, err := l.Acquire(ctx, "b")
	require.NoError(t, err)
	deadline := time.Now().Add(l.TTL() * 3 / 2)
	for time.Now().Before(deadline) {
		next, err := l.Renew(ctx, "b", rev)
		require.NoError(t, err)
		rev = next
		time.Sleep(l.TTL() / 6)
	}
	_, err = l.Acquire(ctx, "c")
	assert.ErrorIs(t, err, kv.ErrLeaseHeld)
}

func TestLeaseExpiredWithoutNewHolder(t *testing.T) {
	st, _ := newStore(t, kv.Config{LockTTL: time.Second})
	ctx := t.Context()
	l := st.Lease
	rev, err := l.Acquire(ctx, "a")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		holder, err := l.Holder(ctx)
		return err == nil && holder == ""
	}, 10*time.Second, 50*time.Millisecond, "the lease ages out")
	_, err = l.Renew(ctx, "a", rev)
	assert.ErrorIs(t, err, kv.ErrLeaseLost, "a renewal after expiry must not resurrect the lease")
}
