package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

// TestCoalescerJoinsUntilTheFetchBegins: a request that arrives while the
// running reload has not begun to fetch shares it; one that arrives after
// the fetch began gets the next reload (its result must come from a fetch
// that began after it asked).
func TestCoalescerJoinsUntilTheFetchBegins(t *testing.T) {
	var runs atomic.Uint64
	beforeFetch, duringFetch := make(chan struct{}), make(chan struct{})
	started, fetchingNow := make(chan struct{}, 2), make(chan struct{}, 2)
	var wg sync.WaitGroup
	c := coalescer{wg: &wg, run: func(ctx context.Context) (betasync.ReloadResult, error) {
		n := runs.Add(1)
		started <- struct{}{}
		if n == 1 {
			<-beforeFetch
		}
		fetching(ctx)
		fetchingNow <- struct{}{}
		if n == 1 {
			<-duringFetch
		}
		return betasync.ReloadResult{Version: n}, nil
	}}
	t.Cleanup(wg.Wait)

	result := func() chan uint64 {
		ch := make(chan uint64, 1)
		go func() {
			res, err := c.do(context.Background())
			assert.NoError(t, err)
			ch <- res.Version
		}()
		return ch
	}
	first := result()
	<-started // reload 1 runs, not fetching yet
	second := result()
	time.Sleep(50 * time.Millisecond) // let the second request join before the fetch begins
	close(beforeFetch)
	<-fetchingNow // reload 1 fetches now
	third := result()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.next != nil
	}, 5*time.Second, time.Millisecond, "the third request waits for the next reload")
	close(duringFetch)

	assert.Equal(t, uint64(1), <-first)
	assert.Equal(t, uint64(1), <-second, "joined the running reload before its fetch")
	assert.Equal(t, uint64(2), <-third, "after the fetch began: the next reload")
	assert.Equal(t, uint64(2), runs.Load())
}
