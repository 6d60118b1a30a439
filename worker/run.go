package worker

import (
	"context"
	"errors"
	"time"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/kv"
)

// errNotDue aborts a schedule claim that finds nothing to do.
var errNotDue = errors.New("not due")

// Bootstrap retry delays: the first, doubling up to the cap.
const (
	bootstrapRetryBase = 250 * time.Millisecond
	bootstrapRetryMax  = 5 * time.Second
)

// Run stores the default mapping if KV has none, starts a reload from the
// source in the background, then keeps the lease and runs due scheduled
// reloads until ctx ends. Storing the default is retried with backoff until
// it succeeds (a replica that skipped it would answer commands but never
// take part in the lease). Run returns nil when ctx ends; by then it has
// released the lease (so another replica takes over at once) and waited for
// its goroutines.
func (w *Worker) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, w.end)
	defer stop()
	if !w.bootstrapWithRetry(ctx) {
		w.wg.Wait()
		return nil
	}
	if !w.cfg.LocalOnly {
		w.wg.Go(func() {
			fctx, cancel := context.WithTimeout(ctx, w.cfg.FetchTimeout+5*time.Second)
			defer cancel()
			_, err := w.refresh(fctx, TriggerStartup)
			w.record(fctx, 0, false, err)
		})
	}
	w.wg.Go(func() { w.keepLease(ctx) })
	w.schedule(ctx)
	w.wg.Wait()
	return nil
}

// bootstrapWithRetry runs bootstrap until it succeeds, waiting
// bootstrapRetryBase after the first failure and doubling up to
// bootstrapRetryMax. It reports false if ctx ended first.
func (w *Worker) bootstrapWithRetry(ctx context.Context) bool {
	delay := bootstrapRetryBase
	for {
		err := w.bootstrap(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.log.Warn("storing the first mapping version failed; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, bootstrapRetryMax)
	}
}

// bootstrap stores the local or embedded mapping as the first version when
// KV holds none, or over a stored entry that is not a valid envelope
// (kv.ErrCorrupt), which nothing could otherwise replace.
func (w *Worker) bootstrap(ctx context.Context) error {
	// bootstrapWithRetry retries with its own backoff and logs each
	// failure: each attempt is short.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	latest, err := w.mappings.Latest(ctx)
	var expected uint64
	if corrupt, ok := errors.AsType[*kv.CorruptError](err); ok {
		w.log.Warn("the stored mapping is not valid; storing the local mapping over it", "version", corrupt.Revision, "err", err)
		expected = corrupt.Revision
	} else if err == nil {
		w.known.Store(latest)
		return nil
	} else if betasync.ErrorCode(err) != betasync.ENOTFOUND {
		return err
	}
	snap, err := w.localSnapshot()
	if err != nil {
		return err
	}
	if snap, err = w.mergeOverrides(ctx, snap); err != nil {
		return err
	}
	snap.Actor = TriggerStartup
	rev, err := w.mappings.Put(ctx, snap, expected)
	if betasync.ErrorCode(err) == betasync.ECONFLICT {
		return nil // another replica stored a version first
	}
	if err != nil {
		return err
	}
	snap.Version = rev
	w.known.Store(snap)
	w.log.Info("stored the first mapping version", "version", rev, "source", snap.Source)
	if err := w.announce(ctx, snap); err != nil {
		w.log.Warn("announcing the first version failed; pods will read it from KV", "err", err)
	}
	return nil
}

// schedule checks the schedule every CheckInterval and, while this replica
// holds the lease, runs a due reload.
func (w *Worker) schedule(ctx context.Context) {
	t := time.NewTicker(w.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.RunDue()
			w.sendBeacon() //nolint:contextcheck // bounded by the tenure's context, as RunDue
		}
	}
}

// sendBeacon names the stored version on config.current, while this
// replica holds the lease: one beacon per check interval for the fleet.
func (w *Worker) sendBeacon() {
	ten := w.tenure.Load()
	if ten == nil || w.beacon == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ten.ctx, w.cfg.CheckInterval)
	defer cancel()
	latest, _, err := w.stored(ctx)
	if err != nil || latest == nil {
		return // nothing to name; pods keep resyncing on their own
	}
	if err := w.beacon(latest.Version, latest.Hash()); err != nil {
		w.log.Debug("beacon", "err", err)
	}
}

// RunDue runs the scheduled reload if this replica holds the lease and the
// schedule is due; it reports whether a reload ran. Run calls it every
// CheckInterval; tests call it to step the schedule.
func (w *Worker) RunDue() bool {
	ten := w.tenure.Load()
	if ten == nil {
		return false
	}
	ran, err := w.runDue(ten.ctx, ten.token)
	if err != nil {
		w.log.Warn("scheduled reload", "err", err)
	}
	return ran
}

func (w *Worker) runDue(ctx context.Context, token uint64) (bool, error) {
	now := w.now()
	_, err := w.schedules.Update(ctx, token, func(s *kv.Schedule) error {
		if s.IntervalHours <= 0 || (s.NextRun != nil && now.Before(*s.NextRun)) {
			w.metrics.ScheduleNext(s.NextRun) // the holder reads it every tick
			return errNotDue
		}
		// Claim the slot: if this replica dies mid-run, the next holder
		// retries once the claim window has passed.
		claim := now.Add(w.claimWindow())
		s.NextRun = &claim
		return nil
	})
	if errors.Is(err, errNotDue) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, runErr := w.refresh(ctx, TriggerSchedule)
	w.record(ctx, token, true, runErr)
	return true, nil
}

// claimWindow is how long a claimed scheduled run may take before another
// holder may retry it.
func (w *Worker) claimWindow() time.Duration { return 2 * w.cfg.FetchTimeout }

// keepLease acquires the lease when free and renews it about every TTL/3.
// A failed renewal ends the tenure at once: its context is cancelled and no
// further scheduled work starts until the lease is acquired again.
//
// Every Renew, and every acquisition (Acquire and the take-over stamp), gets
// a deadline of TTL/3, so a call that hangs fails in time: a renewal starts
// at most TTL/3 after the last good one and ends at most TTL/3 later, so the
// tenure ends within 2*TTL/3 of the last good renewal, before the lease can
// expire and pass to another replica (see package kv). Without the deadline
// a hung renewal would last the JetStream default request timeout (5s).
func (w *Worker) keepLease(ctx context.Context) {
	ttl := w.lease.TTL()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	var rev uint64
	end := func() {
		if ten := w.tenure.Swap(nil); ten != nil {
			ten.cancel()
		}
		w.metrics.LeaseHeld(false)
		rev = 0
	}
	defer func() {
		if rev != 0 {
			rctx, done := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			switch err := w.lease.Release(rctx, rev); {
			case err == nil:
				w.log.Info("released the lease")
			case errors.Is(err, kv.ErrLeaseLost):
				w.log.Info("the lease was no longer ours; nothing to release")
			default:
				w.log.Warn("releasing the lease failed; another replica takes over after the TTL", "err", err)
			}
			done()
		}
		end()
	}()
	for {
		if rev != 0 {
			// A renewal must fail in time, not hang: see keepLease's doc.
			lctx, cancel := context.WithTimeout(ctx, ttl/3)
			next, err := w.lease.Renew(lctx, w.cfg.ReplicaID, rev)
			cancel()
			switch {
			case err == nil:
				rev = next
			case ctx.Err() != nil:
				// Shutting down: the deferred release gives the lease back.
			default:
				w.log.Warn("lost the lease; stopping scheduled work", "err", err)
				end()
			}
		} else if ctx.Err() == nil {
			token, ok := w.acquire(ctx)
			if ok {
				tctx, cancel := context.WithCancel(ctx)
				rev = token
				w.tenure.Store(&tenure{token: token, ctx: tctx, cancel: cancel})
				w.metrics.LeaseHeld(true)
				w.log.Info("acquired the lease; running the schedule", "token", token)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// acquire takes the lease if it is free and stamps the schedule with the new
// fencing token, so writes by any earlier holder are rejected from now on.
//
// The whole acquisition has a deadline of TTL/3 (see keepLease); ctx itself
// is the Run context.
func (w *Worker) acquire(ctx context.Context) (uint64, bool) {
	lctx, cancel := context.WithTimeout(ctx, w.lease.TTL()/3)
	defer cancel()
	token, err := w.lease.Acquire(lctx, w.cfg.ReplicaID)
	if err != nil {
		if !errors.Is(err, kv.ErrLeaseHeld) && ctx.Err() == nil {
			w.log.Warn("acquiring the lease", "err", err)
		}
		return 0, false
	}
	_, err = w.schedules.Update(lctx, token, func(*kv.Schedule) error { return nil })
	if errors.Is(err, kv.ErrFenced) {
		// The record names a newer holder than this fresh lease's token,
		// the newest revision the lock bucket has ever had: the fence is
		// from a lock bucket deleted and created again (its revisions
		// start at 1 again), not from a live holder. Take it over.
		_, err = w.schedules.Update(lctx, 0, func(s *kv.Schedule) error {
			w.log.Warn("the schedule's fence is from an earlier lock bucket; resetting it", "fence", s.Fence, "token", token)
			s.Fence = token
			return nil
		})
	}
	if err != nil {
		w.log.Warn("taking over the schedule failed; giving the lease back", "err", err)
		// lctx may have run out: release on a fresh deadline.
		rctx, done := context.WithTimeout(context.WithoutCancel(ctx), w.lease.TTL()/3)
		defer done()
		_ = w.lease.Release(rctx, token)
		return 0, false
	}
	return token, true
}
