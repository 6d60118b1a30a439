package worker_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/worker"
)

// slowly serves doc after holding the request briefly, so that concurrent
// reloads overlap.
func slowly(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		serve(doc)(w, r)
	}
}

func TestReloadCoalesces(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, slowly(docUpstream))
	w := newWorker(t, n, worker.Config{URL: up.URL})
	events := subscribe(t, srv)
	ctx := t.Context()

	const callers = 100
	results := make([]betasync.ReloadResult, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = w.Reload(ctx)
		})
	}
	close(start)
	wg.Wait()

	assert.LessOrEqual(t, up.Hits(), 2, "a burst causes at most two fetches")
	latest, err := n.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	changed := 0
	for i := range callers {
		if !assert.NoError(t, errs[i], "caller %d", i) {
			continue
		}
		assert.Equal(t, latest.Version, results[i].Version, "caller %d", i)
		assert.Equal(t, hashOf(t, docUpstream), results[i].Hash, "caller %d", i)
		if results[i].Changed {
			changed++
		}
	}
	assert.Positive(t, changed, "the first fetch stored a new version")
	assert.Equal(t, latest.Version, events.Next(t).Version)
	assert.Zero(t, events.Pending(t), "one version, one announcement")
}

func TestReloadAfterABurstFetchesAgain(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, serve(docUpstream))
	w := newWorker(t, n, worker.Config{URL: up.URL})
	ctx := t.Context()

	_, err := w.Reload(ctx)
	require.NoError(t, err)
	up.Set(serve(docSmall))
	res, err := w.Reload(ctx)
	require.NoError(t, err)
	assert.True(t, res.Changed, "a reload asked after the last one ended is never answered by it")
	assert.Equal(t, hashOf(t, docSmall), res.Hash)
	assert.Equal(t, 2, up.Hits())
}

func TestReloadCallerGivesUp(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		serve(docUpstream)(w, r)
	})
	w := newWorker(t, n, worker.Config{URL: up.URL})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := w.Reload(ctx)
	requireCode(t, err, betasync.EUNAVAILABLE, "still running")
	close(release)

	// The abandoned reload still completes and stores its version.
	waitFor(t, func() bool {
		latest, err := n.Store.Mappings.Latest(t.Context())
		return err == nil && latest.Hash() == hashOf(t, docUpstream)
	}, "the reload finishes without its caller")
}
