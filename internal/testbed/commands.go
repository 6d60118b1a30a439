package testbed

import (
	"context"
	"sync/atomic"

	"github.com/betasync/betasync"
)

// Commands is a betasync.Commands for tests where a worker adds nothing: it
// answers every command with a plain success, or fails with Err, or blocks
// until Block is closed; it counts the commands it gets and remembers the
// last hours it was given.
type Commands struct {
	Calls atomic.Int64
	Err   atomic.Pointer[error]
	Block chan struct{} // nil: never block
	Hours atomic.Pointer[float64]
}

var _ betasync.Commands = (*Commands)(nil)

// Fail makes every later command fail with err.
func (c *Commands) Fail(err error) { c.Err.Store(&err) }

func (c *Commands) wait(ctx context.Context) error {
	c.Calls.Add(1)
	if c.Block != nil {
		select {
		case <-c.Block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e := c.Err.Load(); e != nil {
		return *e
	}
	return nil
}

// Reload answers a plain success.
func (c *Commands) Reload(ctx context.Context) (betasync.ReloadResult, error) {
	return betasync.ReloadResult{Status: betasync.StatusSuccess}, c.wait(ctx)
}

// SetSchedule records hours and answers a plain success.
func (c *Commands) SetSchedule(ctx context.Context, hours float64) (betasync.ScheduleResult, error) {
	c.Hours.Store(&hours)
	return betasync.ScheduleResult{Status: betasync.StatusSuccess, IntervalHours: hours}, c.wait(ctx)
}

// CancelSchedule answers a plain success.
func (c *Commands) CancelSchedule(ctx context.Context) (betasync.CancelResult, error) {
	return betasync.CancelResult{Status: betasync.StatusSuccess}, c.wait(ctx)
}

// Status answers an empty status.
func (c *Commands) Status(ctx context.Context) (betasync.ScheduleStatus, error) {
	return betasync.ScheduleStatus{}, c.wait(ctx)
}

// SetOverride answers a plain success naming the override.
func (c *Commands) SetOverride(ctx context.Context, provider, beta string, value *string) (betasync.OverrideResult, error) {
	return betasync.OverrideResult{Status: betasync.StatusSuccess, Provider: provider, Beta: beta, Value: value}, c.wait(ctx)
}

// DeleteOverride answers a plain success naming the override.
func (c *Commands) DeleteOverride(ctx context.Context, provider, beta string) (betasync.OverrideResult, error) {
	return betasync.OverrideResult{Status: betasync.StatusSuccess, Provider: provider, Beta: beta, Deleted: true}, c.wait(ctx)
}

// ListOverrides answers an empty list.
func (c *Commands) ListOverrides(ctx context.Context) (betasync.OverrideList, error) {
	return betasync.OverrideList{Status: betasync.StatusSuccess, Overrides: betasync.Overrides{}}, c.wait(ctx)
}

// Fleet answers an empty fleet view.
func (c *Commands) Fleet(ctx context.Context) (betasync.FleetView, error) {
	return betasync.FleetView{Pods: []betasync.PodStatus{}, Lagging: []string{}}, c.wait(ctx)
}
