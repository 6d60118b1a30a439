package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/worker"
)

func TestNewValidatesConfig(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	deps := worker.Deps{
		Store:    n.Store,
		Announce: func(context.Context, *betasync.Snapshot) error { return nil },
	}
	noAnnounce := deps
	noAnnounce.Announce = nil
	badFile := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(badFile, []byte(`{}`), 0o600))

	tests := []struct {
		name string
		cfg  worker.Config
		deps worker.Deps
	}{
		{name: "no replica id", cfg: worker.Config{}, deps: deps},
		{name: "missing dependency", cfg: worker.Config{ReplicaID: "r1"}, deps: noAnnounce},
		{name: "relative URL", cfg: worker.Config{ReplicaID: "r1", URL: "/mapping.json"}, deps: deps},
		{name: "file URL", cfg: worker.Config{ReplicaID: "r1", URL: "file:///etc/passwd"}, deps: deps},
		{name: "negative timeout", cfg: worker.Config{ReplicaID: "r1", FetchTimeout: -time.Second}, deps: deps},
		{name: "missing local file", cfg: worker.Config{ReplicaID: "r1", LocalOnly: true, LocalFile: filepath.Join(t.TempDir(), "nope.json")}, deps: deps},
		{name: "invalid local file", cfg: worker.Config{ReplicaID: "r1", LocalOnly: true, LocalFile: badFile}, deps: deps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := worker.New(tt.cfg, tt.deps)
			assert.Error(t, err)
		})
	}
}

func TestReload(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	w := newWorker(t, n, worker.Config{URL: up.URL, Now: clk.Now, UserAgent: "betasync-test"})
	events := subscribe(t, srv)
	ctx := t.Context()

	res, err := w.Reload(ctx)
	require.NoError(t, err)
	latest, err := n.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, betasync.StatusSuccess, res.Status)
	assert.True(t, res.Changed)
	assert.NotZero(t, res.Version)
	assert.Equal(t, latest.Version, res.Version, "the version is the KV revision")
	assert.Equal(t, hashOf(t, docUpstream), res.Hash)
	assert.Equal(t, betasync.SourceRemote, res.Source)
	assert.Equal(t, up.URL, res.URL)
	assert.Equal(t, 7, res.ProvidersCount)
	assert.Equal(t, t0, res.Timestamp)
	assert.Equal(t, "Anthropic beta headers configuration reloaded successfully! 7 providers updated.", res.Message, "LiteLLM's text")
	assert.Contains(t, res.Summary, "new version")
	assert.Equal(t, "betasync-test", up.LastHeader().Get("User-Agent"))

	t.Run("announced", func(t *testing.T) {
		env := events.Next(t)
		assert.Equal(t, res.Version, env.Version)
		assert.Equal(t, res.Hash, env.Hash())
		assert.Equal(t, betasync.SourceRemote, env.Source)
		assert.Equal(t, up.URL, env.URL)
		assert.Equal(t, t0, env.FetchedAt)
		assert.Len(t, env.Providers(), 7, "the announced config validates against its hash")
	})

	t.Run("identical content", func(t *testing.T) {
		again, err := w.Reload(ctx)
		require.NoError(t, err)
		assert.False(t, again.Changed)
		assert.Equal(t, res.Version, again.Version)
		assert.Equal(t, res.Hash, again.Hash)
		assert.Equal(t, 7, again.ProvidersCount)
		assert.Contains(t, again.Summary, "unchanged")
		latest, err := n.Store.Mappings.Latest(ctx)
		require.NoError(t, err)
		assert.Equal(t, res.Version, latest.Version, "no new version")
		assert.Equal(t, 2, up.Hits())
	})

	t.Run("new content", func(t *testing.T) {
		up.Set(serve(docSmall))
		next, err := w.Reload(ctx)
		require.NoError(t, err)
		assert.True(t, next.Changed)
		assert.Greater(t, next.Version, res.Version)
		assert.Equal(t, 2, next.ProvidersCount)
		// The next announcement is this version: the unchanged reload
		// announced nothing.
		env := events.Next(t)
		assert.Equal(t, next.Version, env.Version)
		assert.Equal(t, hashOf(t, docSmall), env.Hash())
		assert.Zero(t, events.Pending(t))
	})

	t.Run("recorded in the status", func(t *testing.T) {
		st, err := w.Status(ctx)
		require.NoError(t, err)
		require.NotNil(t, st.LastReload)
		require.NotNil(t, st.LastSuccess)
		assert.Equal(t, t0, *st.LastReload)
		assert.Equal(t, t0, *st.LastSuccess)
		assert.Nil(t, st.LastError)
		assert.False(t, st.Scheduled)
	})
}

// A document LiteLLM tolerates is stored, and what can never match is
// reported with the reload and logged.
func TestReloadReportsWarnings(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	doc := []byte(`{"bedrock": {"context-1m-2025-08-07": "context-1m-2025-08-07", " padded": "x"}, "provider_aliases": {"aws": "nowhere"}}`)
	up := newUpstream(t, serve(doc))
	var l logs
	w := newWorker(t, n, worker.Config{URL: up.URL, Logger: l.Logger()})

	res, err := w.Reload(t.Context())
	require.NoError(t, err)
	assert.True(t, res.Changed)
	require.Len(t, res.Warnings, 2)
	assert.Contains(t, res.Warnings[0]+res.Warnings[1], `" padded"`)
	assert.Contains(t, res.Warnings[0]+res.Warnings[1], `"nowhere"`)
	assert.True(t, l.Contains("can never match"))

	again, err := w.Reload(t.Context())
	require.NoError(t, err)
	assert.False(t, again.Changed)
	assert.Equal(t, res.Warnings, again.Warnings, "an unchanged reload still reports them")
}

func TestReloadKeepsNewerVersionOfAnotherWriter(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	w := newWorker(t, n, worker.Config{URL: up.URL})
	ctx := t.Context()

	// Another replica stored a version of the same content first.
	m, err := betasync.Parse(docUpstream)
	require.NoError(t, err)
	rev, err := n.Store.Mappings.Put(ctx, betasync.NewSnapshot(m, betasync.SourceRemote, t0), 0)
	require.NoError(t, err)

	res, err := w.Reload(ctx)
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Equal(t, rev, res.Version)
}

// TestReloadLosesRaceWhileFetching: replica a reads the stored version,
// then fetches slowly; meanwhile another version is stored. a's store loses
// its compare-and-swap, and what it does next depends on when the winner was
// fetched.
func TestReloadLosesRaceWhileFetching(t *testing.T) {
	tests := []struct {
		name string
		// store stores the competing version while a's fetch is held, and
		// returns its version.
		store func(t *testing.T, n node, clk *clock, up *testbed.Upstream) uint64
		// kept: a keeps the competing version; otherwise a stores its own.
		kept bool
	}{
		{
			name: "a reload that began later wins",
			store: func(t *testing.T, n node, clk *clock, up *testbed.Upstream) uint64 {
				// Replica b reloads after a began: it fetches the
				// upstream's newer document and stores it.
				b := newWorker(t, n, worker.Config{ReplicaID: "b", URL: up.URL, Now: clk.Now})
				res, err := b.Reload(t.Context())
				require.NoError(t, err)
				require.True(t, res.Changed)
				return res.Version
			},
			kept: true,
		},
		{
			name: "a version fetched before a began is replaced",
			store: func(t *testing.T, n node, _ *clock, _ *testbed.Upstream) uint64 {
				// Like the start-up default another replica stores.
				m, err := betasync.Parse(docSmall)
				require.NoError(t, err)
				rev, err := n.Store.Mappings.Put(t.Context(), betasync.NewSnapshot(m, betasync.SourceEmbedded, t0.Add(-time.Second)), 0)
				require.NoError(t, err)
				return rev
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			n := connect(t, srv)
			clk := newClock()
			ctx := t.Context()
			// The first request (a's) is held until released and then gets
			// the older document; later requests get the newer one.
			entered, release := make(chan struct{}), make(chan struct{})
			var requests atomic.Int64
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) == 1 {
					close(entered)
					<-release
					serve(docUpstream)(w, r)
					return
				}
				serve(docSmall)(w, r)
			})
			releaseA := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseA) // before the upstream closes, even on failure
			a := newWorker(t, n, worker.Config{ReplicaID: "a", URL: up.URL, Now: clk.Now})

			type reload struct {
				res betasync.ReloadResult
				err error
			}
			done := make(chan reload, 1)
			go func() {
				res, err := a.Reload(ctx)
				done <- reload{res, err}
			}()
			select {
			case <-entered:
			case <-time.After(10 * time.Second):
				require.FailNow(t, "replica a never fetched")
			}
			winner := tt.store(t, n, clk, up)
			releaseA()
			var got reload
			select {
			case got = <-done:
			case <-time.After(15 * time.Second):
				require.FailNow(t, "replica a's reload did not finish")
			}
			require.NoError(t, got.err)

			latest, err := n.Store.Mappings.Latest(ctx)
			require.NoError(t, err)
			hist, err := n.Store.Mappings.History(ctx)
			require.NoError(t, err)
			if tt.kept {
				assert.False(t, got.res.Changed, "a stores nothing")
				assert.Equal(t, winner, got.res.Version)
				assert.Equal(t, hashOf(t, docSmall), got.res.Hash)
				assert.Equal(t, 2, got.res.ProvidersCount)
				assert.Contains(t, got.res.Summary, fmt.Sprintf("a concurrent reload stored version %d", winner))
				assert.Equal(t, winner, latest.Version, "the newer version stays current")
				assert.Equal(t, hashOf(t, docSmall), latest.Hash(), "the fleet does not regress to a's older document")
				assert.Len(t, hist, 1)
				return
			}
			assert.True(t, got.res.Changed)
			assert.Greater(t, got.res.Version, winner)
			assert.Equal(t, got.res.Version, latest.Version)
			assert.Equal(t, hashOf(t, docUpstream), latest.Hash(), "a's fetch is newer than the stored version")
			assert.Len(t, hist, 2)
		})
	}
}

func TestReloadOverCorruptMapping(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	w := newWorker(t, n, worker.Config{URL: up.URL})
	ctx := t.Context()
	garbage := putGarbage(t, n)

	res, err := w.Reload(ctx)
	require.NoError(t, err, "a corrupt stored entry does not block reloads")
	assert.True(t, res.Changed)
	assert.Greater(t, res.Version, garbage)
	latest, err := n.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, res.Version, latest.Version)
	assert.Equal(t, hashOf(t, docUpstream), latest.Hash())
}

// putGarbage stores an entry that is not an envelope as the current mapping,
// straight through JetStream KV, and returns its revision.
func putGarbage(t *testing.T, n node) uint64 {
	t.Helper()
	js, err := jetstream.New(n.NC)
	require.NoError(t, err)
	bucket, err := js.KeyValue(t.Context(), kv.BucketConfig)
	require.NoError(t, err)
	rev, err := bucket.Put(t.Context(), kv.KeyMapping, []byte("\x00 not an envelope"))
	require.NoError(t, err)
	_, err = n.Store.Mappings.Latest(t.Context())
	require.ErrorIs(t, err, kv.ErrCorrupt)
	return rev
}

func TestReloadLargerThanMaxPayload(t *testing.T) {
	const maxPayload = 16 << 10
	srv := natstest.StartWithMaxPayload(t, maxPayload)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := kv.Ensure(t.Context(), js, kv.Config{LockTTL: time.Second})
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
	up := newUpstream(t, serve([]byte(doc.String())))
	w := newWorker(t, node{NC: nc, Store: st}, worker.Config{URL: up.URL})

	_, err = w.Reload(t.Context())
	requireCode(t, err, betasync.EUPSTREAM, "more than the NATS server's max_payload (16384 bytes)", "raise max_payload")
}

func TestSetSchedule(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	clk := newClock()
	w := newWorker(t, n, worker.Config{URL: "http://127.0.0.1:1/unused", Now: clk.Now})
	ctx := t.Context()

	t.Run("invalid", func(t *testing.T) {
		_, before, err := n.Store.Schedules.Get(ctx)
		require.NoError(t, err)
		for _, tt := range []struct {
			name  string
			hours float64
		}{
			{"zero", 0},
			{"negative", -1},
			{"below the minimum", 0.001},
			{"NaN", math.NaN()},
			{"infinity", math.Inf(1)},
			{"negative infinity", math.Inf(-1)},
			{"more than a year", 8761},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := w.SetSchedule(ctx, tt.hours)
				requireCode(t, err, betasync.EINVALID, "hours must be")
				_, after, err := n.Store.Schedules.Get(ctx)
				require.NoError(t, err)
				assert.Equal(t, before, after, "nothing changed")
			})
		}
	})

	t.Run("valid", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			hours float64
		}{
			{"a day", 24},
			{"the minimum", betasync.MinIntervalHours},
			{"the maximum", betasync.MaxIntervalHours},
			{"fractional", 1.5},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res, err := w.SetSchedule(ctx, tt.hours)
				require.NoError(t, err)
				assert.Equal(t, betasync.StatusSuccess, res.Status)
				assert.InDelta(t, tt.hours, res.IntervalHours, 0)
				require.NotNil(t, res.NextRun)
				assert.Equal(t, t0, *res.NextRun, "never reloaded: due at once")
				st, err := w.Status(ctx)
				require.NoError(t, err)
				assert.True(t, st.Scheduled)
				require.NotNil(t, st.IntervalHours)
				assert.InDelta(t, tt.hours, *st.IntervalHours, 0)
			})
		}
	})
}

func TestSetScheduleNextRunFollowsLastSuccess(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	w := newWorker(t, n, worker.Config{URL: up.URL, Now: clk.Now})
	ctx := t.Context()

	_, err := w.Reload(ctx) // succeeds at t0
	require.NoError(t, err)
	clk.Advance(10 * time.Minute)

	t.Run("recent success", func(t *testing.T) {
		res, err := w.SetSchedule(ctx, 1)
		require.NoError(t, err)
		require.NotNil(t, res.NextRun)
		assert.Equal(t, t0.Add(time.Hour), *res.NextRun, "an interval after the last success")
	})
	t.Run("success older than the interval", func(t *testing.T) {
		res, err := w.SetSchedule(ctx, 0.1) // 6 minutes
		require.NoError(t, err)
		require.NotNil(t, res.NextRun)
		assert.Equal(t, clk.Now(), *res.NextRun, "due at once")
	})
	t.Run("failed since the last success", func(t *testing.T) {
		up.Set(status(http.StatusInternalServerError))
		_, err := w.Reload(ctx)
		require.Error(t, err)
		res, err := w.SetSchedule(ctx, 1)
		require.NoError(t, err)
		require.NotNil(t, res.NextRun)
		assert.Equal(t, t0.Add(time.Hour), *res.NextRun, "a failed reload does not push the first run back")
	})
}

func TestCancelSchedule(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	clk := newClock()
	w := newWorker(t, n, worker.Config{URL: "http://127.0.0.1:1/unused", Now: clk.Now})
	ctx := t.Context()

	t.Run("nothing scheduled", func(t *testing.T) {
		res, err := w.CancelSchedule(ctx)
		require.NoError(t, err)
		assert.Equal(t, betasync.StatusSuccess, res.Status)
	})
	t.Run("scheduled", func(t *testing.T) {
		_, err := w.SetSchedule(ctx, 2)
		require.NoError(t, err)
		res, err := w.CancelSchedule(ctx)
		require.NoError(t, err)
		assert.Equal(t, betasync.StatusSuccess, res.Status)
		assert.Contains(t, res.Message, "cancelled")
		assert.Equal(t, t0, res.Timestamp)

		st, err := w.Status(ctx)
		require.NoError(t, err)
		assert.False(t, st.Scheduled)
		assert.Nil(t, st.IntervalHours)
		assert.Nil(t, st.NextScheduledRun)
		sch, _, err := n.Store.Schedules.Get(ctx)
		require.NoError(t, err)
		assert.Zero(t, sch.IntervalHours)
		assert.Nil(t, sch.NextRun)
	})
}

func TestStatus(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	clk := newClock()
	w := newWorker(t, n, worker.Config{ReplicaID: "replica-a", URL: up.URL, Now: clk.Now})
	ctx := t.Context()

	t.Run("empty", func(t *testing.T) {
		st, err := w.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, betasync.ScheduleStatus{}, st)
		raw, err := json.Marshal(st)
		require.NoError(t, err)
		assert.JSONEq(t, `{
			"scheduled": false, "interval_hours": null, "last_run": null, "next_run": null,
			"last_success": null, "last_error": null,
			"config_version": 0, "config_source": "", "config_hash": "", "lock_holder": ""
		}`, string(raw))
	})

	res, err := w.Reload(ctx)
	require.NoError(t, err)
	clk.Advance(30 * time.Minute)
	up.Set(status(http.StatusInternalServerError))
	_, reloadErr := w.Reload(ctx)
	require.Error(t, reloadErr)
	_, err = w.SetSchedule(ctx, 2)
	require.NoError(t, err)
	token, err := n.Store.Lease.Acquire(ctx, "replica-b")
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Store.Lease.Release(context.WithoutCancel(ctx), token) })

	st, err := w.Status(ctx)
	require.NoError(t, err)
	failedAt := t0.Add(30 * time.Minute)
	assert.True(t, st.Scheduled)
	if assert.NotNil(t, st.IntervalHours) {
		assert.InDelta(t, 2.0, *st.IntervalHours, 0)
	}
	if assert.NotNil(t, st.LastReload) {
		assert.Equal(t, failedAt, *st.LastReload)
	}
	if assert.NotNil(t, st.NextScheduledRun) {
		assert.Equal(t, t0.Add(2*time.Hour), *st.NextScheduledRun)
	}
	if assert.NotNil(t, st.LastSuccess) {
		assert.Equal(t, t0, *st.LastSuccess)
	}
	if assert.NotNil(t, st.LastError) {
		assert.Equal(t, failedAt, st.LastError.Time)
		assert.Equal(t, betasync.ErrorMessage(reloadErr), st.LastError.Message)
		assert.Contains(t, st.LastError.Message, "500")
	}
	assert.Equal(t, res.Version, st.ConfigVersion)
	assert.Equal(t, betasync.SourceRemote, st.ConfigSource)
	assert.Equal(t, res.Hash, st.ConfigHash)
	assert.Equal(t, "replica-b", st.LockHolder, "the holder is shared state, not this replica")

	t.Run("JSON", func(t *testing.T) {
		raw, err := json.Marshal(st)
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(raw, &got))
		// LiteLLM's isoformat: RFC 3339 with +00:00.
		assert.Equal(t, "2026-03-01T12:30:00+00:00", got["last_run"], "a reload at the moment of scheduling counts")
		assert.Equal(t, "2026-03-01T14:00:00+00:00", got["next_run"])
		assert.Equal(t, "2026-03-01T12:30:00+00:00", got["last_reload"])
		assert.Equal(t, "2026-03-01T14:00:00+00:00", got["next_scheduled_run"])
		assert.Equal(t, "2026-03-01T12:00:00+00:00", got["last_success"])
		assert.Equal(t, map[string]any{"time": "2026-03-01T12:30:00+00:00", "message": st.LastError.Message}, got["last_error"])
		assert.InDelta(t, 2.0, got["interval_hours"], 0)
	})
}

// TestCorruptScheduleRecordIsRepairable reproduces the outside test: with a
// corrupt schedule record, set, cancel and status all answered 503 until
// someone ran `nats kv del`. Status now reports the corruption, and setting
// or cancelling the schedule writes over it and logs what it replaced.
func TestCorruptScheduleRecordIsRepairable(t *testing.T) {
	for _, repair := range []string{"set", "cancel"} {
		t.Run(repair, func(t *testing.T) {
			srv := natstest.Start(t)
			n := connect(t, srv)
			var log logs
			w := newWorker(t, n, worker.Config{URL: "http://127.0.0.1:1/unused", Logger: log.Logger()})
			ctx := t.Context()
			js, err := jetstream.New(n.NC)
			require.NoError(t, err)
			bucket, err := js.KeyValue(ctx, kv.BucketState)
			require.NoError(t, err)
			_, err = bucket.Put(ctx, kv.KeySchedule, []byte(`{"interval_hours": "garbage`))
			require.NoError(t, err)

			st, err := w.Status(ctx)
			require.NoError(t, err, "status reports the corruption instead of failing")
			assert.Contains(t, st.ScheduleError, "corrupt")
			assert.False(t, st.Scheduled)

			if repair == "set" {
				res, err := w.SetSchedule(ctx, 6)
				require.NoError(t, err)
				assert.InDelta(t, 6.0, res.IntervalHours, 0)
			} else {
				_, err := w.CancelSchedule(ctx)
				require.NoError(t, err)
			}
			assert.True(t, log.Contains("replaces it"), "the repair is logged")
			assert.True(t, log.Contains(`garbage`), "with what it replaced")

			st, err = w.Status(ctx)
			require.NoError(t, err)
			assert.Empty(t, st.ScheduleError)
			assert.Equal(t, repair == "set", st.Scheduled)
		})
	}
}
