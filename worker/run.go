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

// Run stores the default mapping if KV has none, starts a reload from the
// source in the background, then keeps the lease and runs due scheduled
// reloads until ctx ends. On return it has released the lease (so another
// replica takes over at once) and waited for its goroutines.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.bootstrap(ctx); err != nil {
		return err
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

// bootstrap stores the local or embedded mapping as the first version when
// KV holds none.
func (w *Worker) bootstrap(ctx context.Context) error {
	_, err := w.deps.Mappings.Latest(ctx)
	if betasync.ErrorCode(err) != betasync.ENOTFOUND {
		return err
	}
	env, _, err := w.localEnvelope()
	if err != nil {
		return err
	}
	rev, err := w.deps.Mappings.Put(ctx, env, 0)
	if betasync.ErrorCode(err) == betasync.ECONFLICT {
		return nil // another replica stored the first version
	}
	if err != nil {
		return err
	}
	env.Version = rev
	w.log.Info("stored the first mapping version", "version", rev, "source", env.Source)
	if err := w.deps.Announce(ctx, env); err != nil {
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
		}
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
	_, err := w.deps.Schedules.Update(ctx, token, func(s *betasync.Schedule) error {
		if s.IntervalHours <= 0 || (s.NextRun != nil && now.Before(*s.NextRun)) {
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
func (w *Worker) keepLease(ctx context.Context) {
	ttl := w.deps.Lease.TTL()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	var rev uint64
	end := func() {
		if ten := w.tenure.Swap(nil); ten != nil {
			ten.cancel()
		}
		w.deps.Metrics.LeaseHeld(false)
		rev = 0
	}
	defer func() {
		if rev != 0 {
			rctx, done := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := w.deps.Lease.Release(rctx, rev); err != nil {
				w.log.Warn("releasing the lease failed; another replica takes over after the TTL", "err", err)
			} else {
				w.log.Info("released the lease")
			}
			done()
		}
		end()
	}()
	for {
		if rev != 0 {
			next, err := w.deps.Lease.Renew(ctx, w.cfg.ReplicaID, rev)
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
			if token, ok := w.acquire(ctx); ok {
				tctx, cancel := context.WithCancel(ctx)
				rev = token
				w.tenure.Store(&tenure{token: token, ctx: tctx, cancel: cancel})
				w.deps.Metrics.LeaseHeld(true)
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
func (w *Worker) acquire(ctx context.Context) (uint64, bool) {
	token, err := w.deps.Lease.Acquire(ctx, w.cfg.ReplicaID)
	if err != nil {
		if !errors.Is(err, kv.ErrLeaseHeld) && ctx.Err() == nil {
			w.log.Warn("acquiring the lease", "err", err)
		}
		return 0, false
	}
	if _, err := w.deps.Schedules.Update(ctx, token, func(*betasync.Schedule) error { return nil }); err != nil {
		w.log.Warn("taking over the schedule failed; giving the lease back", "err", err)
		_ = w.deps.Lease.Release(ctx, token)
		return 0, false
	}
	return token, true
}
