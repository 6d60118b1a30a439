package worker_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/worker"
)

// statusWhen polls w.Status until cond holds and returns that status.
func statusWhen(t *testing.T, w *worker.Worker, cond func(betasync.ScheduleStatus) bool, msgAndArgs ...any) betasync.ScheduleStatus {
	t.Helper()
	var st betasync.ScheduleStatus
	waitFor(t, func() bool {
		got, err := w.Status(t.Context())
		if err != nil {
			return false
		}
		st = got
		return cond(got)
	}, msgAndArgs...)
	return st
}

func nextRunIs(want time.Time) func(betasync.ScheduleStatus) bool {
	return func(st betasync.ScheduleStatus) bool {
		return st.NextScheduledRun != nil && st.NextScheduledRun.Equal(want)
	}
}

// settle returns once w's start-up reload has recorded its outcome. The
// caller has moved clk since any earlier reload (or the KV is fresh), so a
// last_run of clk.Now() is the start-up reload's. (The start-up reload is
// not coalesced with manual ones, so a manual reload cannot be used to wait
// for it.)
func settle(t *testing.T, w *worker.Worker, clk *clock) {
	t.Helper()
	statusWhen(t, w, func(st betasync.ScheduleStatus) bool {
		return st.LastReload != nil && st.LastReload.Equal(clk.Now())
	}, "the start-up reload")
}

func TestRunStartup(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	w := newWorker(t, n, worker.Config{URL: up.URL, Now: clk.Now})
	events := subscribe(t, srv)

	run(t, w)
	first := events.Next(t)
	assert.Equal(t, betasync.SourceEmbedded, first.Source, "an empty KV gets the embedded default first")
	assert.Equal(t, betasync.Default().Hash(), first.Hash(), "and it validates")

	second := events.Next(t)
	assert.Equal(t, betasync.SourceRemote, second.Source, "then the remote, fetched in the background")
	assert.Greater(t, second.Version, first.Version)
	assert.Equal(t, hashOf(t, docUpstream), second.Hash())
	assert.Equal(t, 1, up.Hits())

	st := statusWhen(t, w, func(st betasync.ScheduleStatus) bool { return st.LastSuccess != nil })
	assert.Equal(t, second.Version, st.ConfigVersion)
	assert.Equal(t, betasync.SourceRemote, st.ConfigSource)
	hist, err := n.Store.Mappings.History(t.Context())
	require.NoError(t, err)
	require.Len(t, hist, 2)
	assert.Equal(t, betasync.SourceEmbedded, hist[0].Source)
	assert.Equal(t, betasync.SourceRemote, hist[1].Source)
}

func TestRunStartupUpstreamDown(t *testing.T) {
	tests := []struct {
		name       string
		stored     []byte // a version already in KV; nil: empty KV
		wantSource string
	}{
		{name: "empty KV", wantSource: betasync.SourceEmbedded},
		{name: "version stored", stored: docSmall, wantSource: betasync.SourceRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			n := connect(t, srv)
			ctx := t.Context()
			var storedVersion uint64
			if tt.stored != nil {
				m, err := betasync.Parse(tt.stored)
				require.NoError(t, err)
				storedVersion, err = n.Store.Mappings.Put(ctx, betasync.NewSnapshot(m, betasync.SourceRemote, t0), 0)
				require.NoError(t, err)
			}
			up := newUpstream(t, status(http.StatusServiceUnavailable))
			w := newWorker(t, n, worker.Config{URL: up.URL})

			run(t, w)
			st := statusWhen(t, w, func(st betasync.ScheduleStatus) bool { return st.LastError != nil })
			assert.Contains(t, st.LastError.Message, "503")
			assert.Nil(t, st.LastSuccess)
			assert.Equal(t, tt.wantSource, st.ConfigSource)
			hist, err := n.Store.Mappings.History(ctx)
			require.NoError(t, err)
			assert.Len(t, hist, 1, "the stored mapping keeps serving")
			if storedVersion != 0 {
				assert.Equal(t, storedVersion, st.ConfigVersion)
			}
		})
	}
}

// TestRunRetriesBootstrap: storing the first version fails (its bucket is
// gone, as in a JetStream outage). Run keeps retrying instead of returning,
// and once KV is back the replica stores the default and takes part in the
// lease.
func TestRunRetriesBootstrap(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	_, js := srv.JetStream(t)
	ctx := t.Context()
	require.NoError(t, js.DeleteKeyValue(ctx, kv.BucketConfig))
	var out logs
	w := newWorker(t, n, worker.Config{LocalOnly: true, Logger: out.Logger()})
	events := subscribe(t, srv)

	stop := run(t, w)
	waitFor(t, func() bool { return out.Contains("storing the first mapping version failed; retrying") }, "a failure is logged and retried")
	assert.False(t, w.Holder(), "no lease before the first version is stored")

	t.Run("recovers when KV is back", func(t *testing.T) {
		_, err := kv.Ensure(ctx, js, kv.Config{LockTTL: time.Second})
		require.NoError(t, err)
		first := events.Next(t)
		assert.Equal(t, betasync.SourceEmbedded, first.Source)
		waitFor(t, w.Holder, "the replica takes part in the lease")
		latest, err := n.Store.Mappings.Latest(ctx)
		require.NoError(t, err)
		assert.Equal(t, first.Version, latest.Version)
	})

	t.Run("stops while retrying", func(t *testing.T) {
		require.NoError(t, js.DeleteKeyValue(ctx, kv.BucketConfig))
		var out2 logs
		w2 := newWorker(t, n, worker.Config{ReplicaID: "r2", LocalOnly: true, Logger: out2.Logger()})
		stop2 := run(t, w2)
		waitFor(t, func() bool { return out2.Contains("storing the first mapping version failed; retrying") })
		stop2() // asserts that Run returns nil
		assert.False(t, w2.Holder())
	})
	stop()
}

// TestRunBootstrapOverCorruptMapping: the stored entry is not an envelope,
// so nothing can be read from it; start-up stores the default over it.
func TestRunBootstrapOverCorruptMapping(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	ctx := t.Context()
	garbage := putGarbage(t, n)
	w := newWorker(t, n, worker.Config{LocalOnly: true})

	run(t, w)
	waitFor(t, w.Holder, "start-up completes and the replica takes the lease")
	latest, err := n.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Greater(t, latest.Version, garbage)
	assert.Equal(t, betasync.SourceEmbedded, latest.Source)
	assert.Equal(t, betasync.Default().Hash(), latest.Hash())
}

// TestLeaseHolderStopsBeforeTheLeaseExpires: the holder's connection stalls,
// so its renewals neither succeed nor fail, they hang. It must stop acting
// before the lease expires and another replica can take it, though the
// JetStream client's own request timeout (5s) is far longer than the TTL
// (1s).
func TestLeaseHolderStopsBeforeTheLeaseExpires(t *testing.T) {
	srv := natstest.Start(t)
	p := newProxy(t, srv.Listen())
	a := newWorker(t, connectVia(t, p.Addr()), worker.Config{ReplicaID: "a", LocalOnly: true, CheckInterval: time.Hour})
	other := connect(t, srv)
	ctx := t.Context()

	run(t, a)
	waitFor(t, a.Holder, "a takes the lease")
	p.Stall()
	waitFor(t, func() bool {
		_, err := other.Store.Lease.Acquire(ctx, "b")
		return err == nil
	}, "a's lease expires")
	assert.False(t, a.Holder(), "a stopped acting before another replica could acquire the lease")
}

func TestRunReleasesTheLease(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	w := newWorker(t, n, worker.Config{ReplicaID: "r1", LocalOnly: true})
	ctx := t.Context()

	stop := run(t, w)
	waitFor(t, w.Holder, "the only replica takes the lease")
	st, err := w.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "r1", st.LockHolder)

	stop()
	assert.False(t, w.Holder())
	holder, err := n.Store.Lease.Holder(ctx)
	require.NoError(t, err)
	assert.Empty(t, holder, "a clean stop gives the lease back")
	_, err = n.Store.Lease.Acquire(ctx, "r2")
	assert.NoError(t, err, "another replica can take over at once, without waiting for the TTL")
}

func TestRunWaitsForAHeldLease(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	ctx := t.Context()
	// A replica that died holding the lease: it never renews or releases.
	_, err := n.Store.Lease.Acquire(ctx, "dead")
	require.NoError(t, err)

	w := newWorker(t, n, worker.Config{ReplicaID: "r1", LocalOnly: true, CheckInterval: 20 * time.Millisecond})
	run(t, w)
	st, err := w.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dead", st.LockHolder)
	assert.False(t, w.Holder())
	waitFor(t, w.Holder, "the lease expires and the live replica takes over")
	st, err = w.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "r1", st.LockHolder)
}

// TestScheduleTwoReplicas runs two replicas on one server with a shared
// fake clock: every interval is fetched exactly once, by the holder; when
// the holder dies without releasing the lease, the other takes over after
// the TTL and continues from the stored next_run.
func TestScheduleTwoReplicas(t *testing.T) {
	srv := natstest.Start(t)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	ctx := t.Context()
	cfg := func(id string) worker.Config {
		return worker.Config{
			ReplicaID:     id,
			URL:           up.URL,
			Now:           clk.Now,
			CheckInterval: 20 * time.Millisecond,
			FetchTimeout:  5 * time.Second,
			RetryBase:     time.Minute,
		}
	}
	nodes := map[string]node{"a": connect(t, srv), "b": connect(t, srv)}
	workers := map[string]*worker.Worker{
		"a": newWorker(t, nodes["a"], cfg("a")),
		"b": newWorker(t, nodes["b"], cfg("b")),
	}
	// Start the replicas one after the other, each at its own instant, so
	// that each start-up reload is seen to end before the schedule starts.
	run(t, workers["a"])
	settle(t, workers["a"], clk)
	clk.Advance(time.Minute)
	run(t, workers["b"])
	settle(t, workers["b"], clk)
	start := clk.Now()
	hist, err := nodes["a"].Store.Mappings.History(ctx)
	require.NoError(t, err)
	require.Len(t, hist, 2, "one default and one fetched version")
	assert.Equal(t, betasync.SourceEmbedded, hist[0].Source)

	holderID := func() string {
		for id, w := range workers {
			if w.Holder() {
				return id
			}
		}
		return ""
	}
	waitFor(t, func() bool { return holderID() != "" }, "a replica takes the lease")

	_, err = workers["a"].SetSchedule(ctx, 1)
	require.NoError(t, err)
	base := up.Hits()
	interval := 0
	observer := workers["a"] // a live replica to read the status through
	// step advances the clock by advance and waits for the next scheduled
	// run to be recorded: next_run an interval after it.
	step := func(advance time.Duration) betasync.ScheduleStatus {
		t.Helper()
		interval++
		clk.Advance(advance)
		ranAt := clk.Now()
		st := statusWhen(t, observer, nextRunIs(ranAt.Add(time.Hour)), "scheduled run %d", interval)
		assert.Equal(t, base+interval, up.Hits(), "exactly one fetch for scheduled run %d", interval)
		if assert.NotNil(t, st.LastReload) {
			assert.Equal(t, ranAt, *st.LastReload)
		}
		if assert.NotNil(t, st.LastSuccess) {
			assert.Equal(t, ranAt, *st.LastSuccess)
		}
		return st
	}

	st, err := workers["b"].Status(ctx)
	require.NoError(t, err)
	if assert.NotNil(t, st.NextScheduledRun) {
		assert.Equal(t, start.Add(time.Hour), *st.NextScheduledRun, "an hour after the start-up reloads")
	}
	for range 3 {
		step(time.Hour)
	}

	// The holder dies: its connection goes, so it can neither renew nor
	// release the lease. The slot falls due while nobody holds the lease.
	dead := holderID()
	require.NotEmpty(t, dead)
	live := map[string]string{"a": "b", "b": "a"}[dead]
	nodes[dead].NC.Close()
	observer = workers[live]
	st = step(time.Hour)
	assert.True(t, workers[live].Holder(), "the live replica took over")
	assert.Equal(t, live, st.LockHolder)

	// And it keeps the schedule going.
	step(time.Hour)
	step(time.Hour)
	assert.Equal(t, live, holderID())
}

func TestScheduleRetriesWithBackoff(t *testing.T) {
	tests := []struct {
		name  string
		hours float64
		// retries are the expected delays between failed runs.
		retries []time.Duration
	}{
		{name: "doubling", hours: 1, retries: []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}},
		{name: "capped at the interval", hours: 0.05, retries: []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			n := connect(t, srv)
			up := newUpstream(t, status(http.StatusInternalServerError))
			clk := newClock()
			ctx := t.Context()
			// The ticker never fires here: the test steps the schedule with RunDue.
			w := newWorker(t, n, worker.Config{URL: up.URL, Now: clk.Now, CheckInterval: time.Hour, RetryBase: time.Minute})
			run(t, w)
			statusWhen(t, w, func(st betasync.ScheduleStatus) bool { return st.LastError != nil }, "the start-up reload fails")
			waitFor(t, w.Holder)
			base := up.Hits()

			_, err := w.SetSchedule(ctx, tt.hours)
			require.NoError(t, err)
			require.True(t, w.RunDue(), "never loaded successfully: due at once")
			for i, delay := range tt.retries {
				sch, _, err := n.Store.Schedules.Get(ctx)
				require.NoError(t, err)
				assert.Equal(t, i+1, sch.Failures)
				if assert.NotNil(t, sch.NextRun) {
					assert.Equal(t, clk.Now().Add(delay), *sch.NextRun, "retry %d", i+1)
				}
				clk.Advance(delay - time.Second)
				assert.False(t, w.RunDue(), "retry %d is not due yet", i+1)
				clk.Advance(time.Second)
				assert.True(t, w.RunDue(), "retry %d is due", i+1)
			}
			assert.Equal(t, base+1+len(tt.retries), up.Hits())

			up.Set(serve(docUpstream))
			sch, _, err := n.Store.Schedules.Get(ctx)
			require.NoError(t, err)
			require.NotNil(t, sch.NextRun)
			clk.Advance(sch.NextRun.Sub(clk.Now()))
			require.True(t, w.RunDue(), "the last retry succeeds")
			sch, _, err = n.Store.Schedules.Get(ctx)
			require.NoError(t, err)
			assert.Zero(t, sch.Failures, "a success resets the backoff")
			if assert.NotNil(t, sch.NextRun) {
				assert.Equal(t, clk.Now().Add(sch.Interval()), *sch.NextRun, "back to the interval")
			}
			if assert.NotNil(t, sch.LastSuccess) {
				assert.Equal(t, clk.Now(), *sch.LastSuccess)
			}
			assert.Nil(t, sch.LastError, "last_error is the error of the last run: none after a success")
		})
	}
}

func TestScheduleCancelStopsRuns(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	ctx := t.Context()
	w := newWorker(t, n, worker.Config{URL: up.URL, Now: clk.Now, CheckInterval: time.Hour})
	run(t, w)
	settle(t, w, clk)
	waitFor(t, w.Holder)

	_, err := w.SetSchedule(ctx, 1)
	require.NoError(t, err)
	clk.Advance(time.Hour)
	_, err = w.CancelSchedule(ctx)
	require.NoError(t, err)
	hits := up.Hits()
	assert.False(t, w.RunDue(), "a cancelled schedule never runs")
	clk.Advance(48 * time.Hour)
	assert.False(t, w.RunDue())
	assert.Equal(t, hits, up.Hits())
}

func TestScheduleNotHolder(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	w := newWorker(t, n, worker.Config{URL: up.URL, Now: clk.Now})
	_, err := w.SetSchedule(t.Context(), 1)
	require.NoError(t, err)
	clk.Advance(2 * time.Hour)
	assert.False(t, w.RunDue(), "a replica without the lease never runs the schedule")
	assert.Zero(t, up.Hits())
}

func TestScheduleSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.StartAt(t, "127.0.0.1:-1", dir)
	addr := srv.Listen()
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	ctx := t.Context()
	cfg := func(id string) worker.Config {
		return worker.Config{ReplicaID: id, URL: up.URL, Now: clk.Now, CheckInterval: 20 * time.Millisecond}
	}

	n := connect(t, srv)
	w := newWorker(t, n, cfg("r1"))
	stop := run(t, w)
	settle(t, w, clk)
	_, err := w.SetSchedule(ctx, 2)
	require.NoError(t, err)
	base := up.Hits()
	clk.Advance(2 * time.Hour)
	before := statusWhen(t, w, nextRunIs(t0.Add(4*time.Hour)), "the first scheduled run")
	assert.Equal(t, base+1, up.Hits())

	// Stop everything, server included, and start again on the same store.
	stop()
	n.NC.Close()
	srv.Stop()
	srv = natstest.StartAt(t, addr, dir)
	n = connect(t, srv)
	w = newWorker(t, n, cfg("r2"))

	st, err := w.Status(ctx)
	require.NoError(t, err)
	assert.True(t, st.Scheduled)
	if assert.NotNil(t, st.IntervalHours) {
		assert.InDelta(t, 2.0, *st.IntervalHours, 0)
	}
	assert.Equal(t, before.NextScheduledRun, st.NextScheduledRun)
	assert.Equal(t, before.LastReload, st.LastReload)
	assert.Equal(t, before.LastSuccess, st.LastSuccess)
	assert.Equal(t, before.ConfigVersion, st.ConfigVersion)
	assert.Equal(t, before.ConfigHash, st.ConfigHash)

	// The new replica carries the schedule on. Its start-up reload resets
	// the timer, like any successful reload.
	clk.Advance(time.Minute)
	run(t, w)
	settle(t, w, clk)
	restarted := clk.Now()
	st, err = w.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, restarted.Add(2*time.Hour), *st.NextScheduledRun)
	base = up.Hits()
	clk.Advance(2 * time.Hour)
	statusWhen(t, w, nextRunIs(restarted.Add(4*time.Hour)), "the next scheduled run, after the restart")
	assert.Equal(t, base+1, up.Hits())
}

// TestScheduleTakeoverFromDeadHolder: a holder claimed a scheduled run and
// died mid-run without releasing the lease. The next holder takes over after
// the TTL, fences the dead one out, and runs the claimed slot exactly once
// when the claim expires.
func TestScheduleTakeoverFromDeadHolder(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	ctx := t.Context()

	ghost, err := n.Store.Lease.Acquire(ctx, "ghost")
	require.NoError(t, err)
	w := newWorker(t, n, worker.Config{URL: up.URL, Now: clk.Now, CheckInterval: 20 * time.Millisecond, FetchTimeout: 5 * time.Second})
	run(t, w)
	settle(t, w, clk)

	// The ghost's last act: claim the slot due now, as a holder does
	// before it fetches.
	_, err = n.Store.Lease.Renew(ctx, "ghost", ghost)
	require.NoError(t, err)
	claimedUntil := t0.Add(10 * time.Second)
	_, err = n.Store.Schedules.Update(ctx, ghost, func(s *kv.Schedule) error {
		s.IntervalHours = 1
		s.NextRun = &claimedUntil
		return nil
	})
	require.NoError(t, err)
	base := up.Hits()

	waitFor(t, w.Holder, "the lease expires and the live replica takes over")
	_, err = n.Store.Schedules.Update(ctx, ghost, func(s *kv.Schedule) error {
		s.IntervalHours = 99
		return nil
	})
	require.ErrorIs(t, err, kv.ErrFenced, "the dead holder may no longer write")

	st, err := w.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, &claimedUntil, st.NextScheduledRun, "the new holder continues from the stored next_run")
	assert.Equal(t, base, up.Hits(), "the claim has not expired")

	clk.Advance(10 * time.Second)
	statusWhen(t, w, nextRunIs(claimedUntil.Add(time.Hour)), "the claimed slot runs once the claim expires")
	assert.Equal(t, base+1, up.Hits(), "exactly once")
}

// TestLockBucketRecreated reproduces the outside test: deleting and
// recreating the buckets restarts revisions at 1, and the schedule's fence
// (a token of the old lock bucket) outranked every new token, so no replica
// could run the schedule again. A fresh lease's token is the newest the
// lock bucket has had, so a bigger fence can only be from an earlier lock
// bucket: the new holder resets it.
func TestLockBucketRecreated(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	ctx := t.Context()
	for range 20 { // an old lock bucket with revisions far above 1
		rev, err := n.Store.Lease.Acquire(ctx, "old")
		require.NoError(t, err)
		require.NoError(t, n.Store.Lease.Release(ctx, rev))
	}
	rev, err := n.Store.Lease.Acquire(ctx, "old")
	require.NoError(t, err)
	_, err = n.Store.Schedules.Update(ctx, rev, func(*kv.Schedule) error { return nil })
	require.NoError(t, err)

	_, js := srv.JetStream(t)
	require.NoError(t, js.DeleteKeyValue(ctx, kv.BucketLock))
	fresh := connect(t, srv) // recreates the lock bucket: revisions start at 1
	var log logs
	w := newWorker(t, fresh, worker.Config{LocalOnly: true, CheckInterval: 20 * time.Millisecond, Logger: log.Logger()})
	run(t, w)
	waitFor(t, w.Holder, "the new holder takes over despite the old fence")
	assert.True(t, log.Contains("from an earlier lock bucket"))
	sch, _, err := fresh.Store.Schedules.Get(ctx)
	require.NoError(t, err)
	assert.Less(t, sch.Fence, rev, "the fence is a token of the new lock bucket")
}

// TestBeacon: the lease holder, and only it, names the stored version on
// config.current every check interval, so pods that missed an announcement
// catch up.
func TestBeacon(t *testing.T) {
	srv := natstest.Start(t)
	up := newUpstream(t, serve(docUpstream))
	var calls [2]atomic.Int64
	var workers [2]*worker.Worker
	for i := range workers {
		n := connect(t, srv)
		workers[i] = testbed.NewWorker(t, n, worker.Config{
			URL: up.URL, CheckInterval: 20 * time.Millisecond, ReplicaID: fmt.Sprintf("r%d", i),
		}, worker.Deps{Beacon: func(version uint64, hash string) error {
			calls[i].Add(1)
			return publisher.PublishBeacon(n.NC, version, hash)
		}})
	}
	nc := srv.Connect(t)
	beacons, err := nc.SubscribeSync(publisher.SubjectConfigCurrent)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	for _, w := range workers {
		run(t, w)
	}
	store := connect(t, srv).Store

	// The beacons name what KV holds, once the start-up reload is stored.
	require.Eventually(t, func() bool {
		msg, err := beacons.NextMsg(5 * time.Second)
		require.NoError(t, err)
		var b publisher.Beacon
		require.NoError(t, json.Unmarshal(msg.Data, &b))
		latest, err := store.Mappings.Latest(t.Context())
		require.NoError(t, err)
		return b.Version == latest.Version && b.Hash == latest.Hash() && latest.Source == betasync.SourceRemote
	}, 10*time.Second, time.Millisecond)

	st := statusWhen(t, workers[0], func(st betasync.ScheduleStatus) bool { return st.LockHolder != "" })
	holder, other := 0, 1
	if st.LockHolder == "r1" {
		holder, other = 1, 0
	}
	require.Eventually(t, func() bool { return calls[holder].Load() >= 3 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, calls[other].Load(), "only the lease holder beacons")
}
