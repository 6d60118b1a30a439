package worker

import (
	"context"
	"sync"
	"time"

	"github.com/betasync/betasync"
)

// coalescer runs reloads one at a time and merges concurrent requests. A
// request joins the running reload while that one has not yet begun to
// fetch, and otherwise the next one (which starts when the current ends),
// instead of starting its own. So every caller gets a result whose fetch
// began after it asked.
//
// A reload that queued behind another is held until the burst that queued
// it is over (no request has joined it for settleQuiet, at most
// settleMax), so that a burst of requests costs two fetches however many
// whole reloads it outlasts, rather than one per reload that fits in it. A
// lone reload, and the first of a burst, start at once.
type coalescer struct {
	run func(ctx context.Context) (betasync.ReloadResult, error)
	// quiet and hold override settleQuiet and settleMax (tests).
	quiet, hold time.Duration
	wg          *sync.WaitGroup // the worker's; it waits for the runner goroutine
	// life cancels the reloads when it ends (the worker stops); nil: never.
	life context.Context

	mu      sync.Mutex
	running bool
	current *flight // the reload running now; nil when none
	next    *flight
}

// settleQuiet and settleMax bound the hold of a reload that queued behind
// another (see coalescer).
const (
	settleQuiet = 20 * time.Millisecond
	settleMax   = 500 * time.Millisecond
)

type flight struct {
	fetching bool      // its fetch has begun: later requests wait for the next (c.mu)
	queued   bool      // created while another reload ran: settle holds it
	lastJoin time.Time // when the last request joined it (c.mu)
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
		f = &flight{done: make(chan struct{}), ctx: context.WithoutCancel(ctx), queued: c.current != nil}
		c.next = f
		if !c.running {
			c.running = true
			c.wg.Go(c.loop)
		}
	}
	f.lastJoin = time.Now()
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
		if f.queued {
			c.settle(f) // requests still join it meanwhile: it is current and not fetching
		}
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

// settle waits until no request has joined f for the quiet time, or the
// hold time has passed, or the worker stops.
func (c *coalescer) settle(f *flight) {
	quiet, hold := settleQuiet, settleMax
	if c.quiet > 0 {
		quiet, hold = c.quiet, c.hold
	}
	var stop <-chan struct{}
	if c.life != nil {
		stop = c.life.Done()
	}
	end := time.Now().Add(hold)
	for {
		c.mu.Lock()
		wait := time.Until(f.lastJoin.Add(quiet))
		c.mu.Unlock()
		wait = min(wait, time.Until(end))
		if wait <= 0 {
			return
		}
		select {
		case <-time.After(wait):
		case <-stop:
			return
		}
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
