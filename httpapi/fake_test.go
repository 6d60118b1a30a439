package httpapi_test

import (
	"context"

	"github.com/betasync/betasync"
)

// fakeCommands answers every command with a zero success, or err when set,
// for tests where a bus adds nothing.
type fakeCommands struct {
	err error
}

func (f *fakeCommands) Reload(context.Context) (betasync.ReloadResult, error) {
	return betasync.ReloadResult{Status: betasync.StatusSuccess}, f.err
}

func (f *fakeCommands) SetSchedule(_ context.Context, hours string) (betasync.ScheduleResult, error) {
	return betasync.ScheduleResult{Status: betasync.StatusSuccess}, f.err
}

func (f *fakeCommands) CancelSchedule(context.Context) (betasync.CancelResult, error) {
	return betasync.CancelResult{Status: betasync.StatusSuccess}, f.err
}

func (f *fakeCommands) Status(context.Context) (betasync.ScheduleStatus, error) {
	return betasync.ScheduleStatus{}, f.err
}
