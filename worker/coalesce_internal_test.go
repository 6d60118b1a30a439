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

// TestCoalescerSettlesABurst: requests keep arriving for 150 ms, past the
// end of the reload they queued behind. The queued reload holds until the
// burst is over (no request joined for the quiet time), so the whole burst
// costs two reloads, not one per reload that fits in it; every request
// after the first reload's fetch began gets the second.
func TestCoalescerSettlesABurst(t *testing.T) {
	var runs atomic.Uint64
	release := make(chan struct{})
	fetchingNow := make(chan struct{}, 8)
	var wg sync.WaitGroup
	c := coalescer{wg: &wg, quiet: 250 * time.Millisecond, hold: 10 * time.Second,
		run: func(ctx context.Context) (betasync.ReloadResult, error) {
			n := runs.Add(1)
			fetching(ctx)
			select {
			case fetchingNow <- struct{}{}:
			default:
			}
			if n == 1 {
				<-release
			}
			return betasync.ReloadResult{Version: n}, nil
		}}
	t.Cleanup(wg.Wait)

	var results sync.WaitGroup
	versions := make(chan uint64, 100)
	ask := func() {
		results.Go(func() {
			res, err := c.do(context.Background())
			assert.NoError(t, err)
			versions <- res.Version
		})
	}
	ask()
	<-fetchingNow // reload 1 fetches: everything from now on is for a later one
	for i := range 30 {
		if i == 6 {
			close(release) // reload 1 ends early in the burst
		}
		ask()
		time.Sleep(5 * time.Millisecond)
	}
	results.Wait()
	close(versions)
	counts := map[uint64]int{}
	for v := range versions {
		counts[v]++
	}
	assert.Equal(t, map[uint64]int{1: 1, 2: 30}, counts, "the burst after the first fetch shares the second reload")
	assert.Equal(t, uint64(2), runs.Load())
}

// TestCoalescerSettleIsBounded: a stream that never pauses still gets a
// reload within the hold time.
func TestCoalescerSettleIsBounded(t *testing.T) {
	var runs atomic.Uint64
	var wg sync.WaitGroup
	c := coalescer{wg: &wg, quiet: time.Second, hold: 30 * time.Millisecond,
		run: func(ctx context.Context) (betasync.ReloadResult, error) {
			fetching(ctx)
			time.Sleep(10 * time.Millisecond)
			return betasync.ReloadResult{Version: runs.Add(1)}, nil
		}}
	t.Cleanup(wg.Wait)
	var results sync.WaitGroup
	for range 60 { // 300 ms of requests, 5 ms apart, against a 1 s quiet time
		results.Go(func() {
			_, err := c.do(context.Background())
			assert.NoError(t, err)
		})
		time.Sleep(5 * time.Millisecond)
	}
	results.Wait()
	assert.GreaterOrEqual(t, runs.Load(), uint64(3), "held at most 30 ms each, the reloads follow one another during the stream")
}
