package worker

import (
	"context"
	"sync"

	"github.com/betasync/betasync"
)

// coalescer runs reloads one at a time and merges concurrent requests. A
// request joins the running reload while that one has not yet begun to
// fetch, and otherwise the next one (which starts when the current ends),
// instead of starting its own. So every caller gets a result whose fetch
// began after it asked, and a burst of requests causes at most two fetches
// (three when the burst outlasts two whole reloads).
type coalescer struct {
	run func(ctx context.Context) (betasync.ReloadResult, error)
	wg  *sync.WaitGroup // the worker's; it waits for the runner goroutine
	// life cancels the reloads when it ends (the worker stops); nil: never.
	life context.Context

	mu      sync.Mutex
	running bool
	current *flight // the reload running now; nil when none
	next    *flight
}

type flight struct {
	fetching bool // its fetch has begun: later requests wait for the next (c.mu)
	done     chan struct{}
	ctx      context.Context // the first joiner's context, without its cancellation
	res      betasync.ReloadResult
	err      error
}

// do joins the next reload and waits for its result or ctx.
func (c *coalescer) do(ctx context.Context) (betasync.ReloadResult, error) {
	c.mu.Lock()
	if c.life != nil && c.life.Err() != nil {
		// The worker has stopped: its WaitGroup no longer waits for a
		// runner started now.
		c.mu.Unlock()
		return betasync.ReloadResult{}, betasync.Errorf(betasync.EUNAVAILABLE, "this worker has stopped")
	}
	f := c.next
	if cur := c.current; f == nil && cur != nil && !cur.fetching {
		f = cur
	}
	if f == nil {
		f = &flight{done: make(chan struct{}), ctx: context.WithoutCancel(ctx)}
		c.next = f
		if !c.running {
			c.running = true
			c.wg.Go(c.loop)
		}
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		return betasync.ReloadResult{}, betasync.Errorf(betasync.EUNAVAILABLE, "reload still running: %v", ctx.Err())
	}
}

func (c *coalescer) loop() {
	for {
		c.mu.Lock()
		f := c.next
		c.next, c.current = nil, f
		if f == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithCancel(context.WithValue(f.ctx, fetchingKey{}, func() {
			c.mu.Lock()
			f.fetching = true
			c.mu.Unlock()
		}))
		if c.life != nil {
			stop := context.AfterFunc(c.life, cancel)
			f.res, f.err = c.run(ctx)
			stop()
		} else {
			f.res, f.err = c.run(ctx)
		}
		cancel()
		c.mu.Lock()
		c.current = nil // finished: nobody may join it any more
		c.mu.Unlock()
		close(f.done)
	}
}

type fetchingKey struct{}

// fetching tells the coalescer running ctx's reload that its fetch begins
// now: requests from now on must wait for the next reload.
func fetching(ctx context.Context) {
	if mark, ok := ctx.Value(fetchingKey{}).(func()); ok {
		mark()
	}
}
