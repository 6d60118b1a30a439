package worker

import (
	"context"
	"sync"

	"github.com/betasync/betasync"
)

// coalescer runs reloads one at a time and merges concurrent requests. A
// request that arrives while a reload runs joins the next one (which starts
// when the current ends) instead of starting its own, so every caller gets a
// result that began after it asked, and any burst of requests causes at most
// two reloads.
type coalescer struct {
	run func(ctx context.Context) (betasync.ReloadResult, error)
	wg  *sync.WaitGroup // the worker's; it waits for the runner goroutine
	// life cancels the reloads when it ends (the worker stops); nil: never.
	life context.Context

	mu      sync.Mutex
	running bool
	next    *flight
}

type flight struct {
	done chan struct{}
	ctx  context.Context // the first joiner's context, without its cancellation
	res  betasync.ReloadResult
	err  error
}

// do joins the next reload and waits for its result or ctx.
func (c *coalescer) do(ctx context.Context) (betasync.ReloadResult, error) {
	c.mu.Lock()
	f := c.next
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
		c.next = nil
		if f == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithCancel(f.ctx)
		if c.life != nil {
			stop := context.AfterFunc(c.life, cancel)
			f.res, f.err = c.run(ctx)
			stop()
		} else {
			f.res, f.err = c.run(ctx)
		}
		cancel()
		close(f.done)
	}
}
