package worker_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/worker"
)

func TestLocalOnlyFile(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docOther))
	path := filepath.Join(t.TempDir(), "mapping.json")
	require.NoError(t, os.WriteFile(path, docUpstream, 0o600))
	w := newWorker(t, n, worker.Config{URL: up.URL, LocalOnly: true, LocalFile: path})
	events := subscribe(t, srv)
	ctx := t.Context()

	// Run stores the local file as the first version, and fetches nothing.
	stop := run(t, w)
	first := events.Next(t)
	assert.Equal(t, betasync.SourceLocal, first.Source)
	assert.Equal(t, hashOf(t, docUpstream), first.Hash())
	assert.Equal(t, "file://"+path, first.URL)

	t.Run("reload unchanged", func(t *testing.T) {
		res, err := w.Reload(ctx)
		require.NoError(t, err)
		assert.False(t, res.Changed)
		assert.Equal(t, first.Version, res.Version)
	})

	t.Run("reload re-reads the file", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, docSmall, 0o600))
		res, err := w.Reload(ctx)
		require.NoError(t, err)
		assert.True(t, res.Changed)
		assert.Greater(t, res.Version, first.Version)
		assert.Equal(t, betasync.SourceLocal, res.Source)
		assert.Equal(t, hashOf(t, docSmall), res.Hash)
		env := events.Next(t)
		assert.Equal(t, res.Version, env.Version)
		assert.Equal(t, betasync.SourceLocal, env.Source)
	})

	t.Run("invalid file keeps the last good", func(t *testing.T) {
		before, err := n.Store.Mappings.Latest(ctx)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, []byte(`{"anthropic": {"x": 1}}`), 0o600))
		_, reloadErr := w.Reload(ctx)
		requireCode(t, reloadErr, betasync.EUPSTREAM, path, `beta "x"`)
		after, err := n.Store.Mappings.Latest(ctx)
		require.NoError(t, err)
		assert.Equal(t, before.Version, after.Version)
		st, err := w.Status(ctx)
		require.NoError(t, err)
		if assert.NotNil(t, st.LastError) {
			assert.Equal(t, betasync.ErrorMessage(reloadErr), st.LastError.Message)
		}
	})

	t.Run("missing file keeps the last good", func(t *testing.T) {
		require.NoError(t, os.Remove(path))
		_, err := w.Reload(ctx)
		requireCode(t, err, betasync.EUPSTREAM, path)
	})

	stop()
	assert.Zero(t, up.Hits(), "local-only never fetches")
}

func TestLocalOnlyEmbedded(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docOther))
	clk := newClock()
	// The ticker never fires here: the test steps the schedule with RunDue.
	w := newWorker(t, n, worker.Config{URL: up.URL, LocalOnly: true, Now: clk.Now, CheckInterval: time.Hour})
	events := subscribe(t, srv)
	ctx := t.Context()

	stop := run(t, w)
	first := events.Next(t)
	assert.Equal(t, betasync.SourceEmbedded, first.Source)
	assert.Equal(t, betasync.Default().Hash(), first.Hash())
	assert.Empty(t, first.URL)

	res, err := w.Reload(ctx)
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Equal(t, first.Version, res.Version)
	assert.Equal(t, betasync.SourceEmbedded, res.Source)

	t.Run("scheduled runs read it too", func(t *testing.T) {
		_, err := w.SetSchedule(ctx, 1)
		require.NoError(t, err)
		waitFor(t, w.Holder, "the only replica takes the lease")
		assert.False(t, w.RunDue(), "not due yet")
		clk.Advance(time.Hour)
		assert.True(t, w.RunDue())
		st, err := w.Status(ctx)
		require.NoError(t, err)
		assert.Nil(t, st.LastError)
		if assert.NotNil(t, st.NextScheduledRun) {
			assert.Equal(t, t0.Add(2*time.Hour), *st.NextScheduledRun)
		}
	})

	stop()
	assert.Zero(t, up.Hits(), "local-only never fetches")
}
