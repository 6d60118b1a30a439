package testbed

import (
	"context"
	"time"

	"github.com/betasync/betasync"
)

// History answers an empty history.
func (c *Commands) History(ctx context.Context, limit int) (betasync.HistoryResult, error) {
	return betasync.HistoryResult{Status: betasync.StatusSuccess, Versions: []betasync.HistoryEntry{}}, c.wait(ctx)
}

// HistoryVersion answers the embedded default as version.
func (c *Commands) HistoryVersion(ctx context.Context, version uint64) (*betasync.Snapshot, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	s := betasync.NewSnapshot(betasync.Default(), betasync.SourceEmbedded, time.Time{})
	s.Version = version
	return s, nil
}

// Rollback answers a plain success naming version.
func (c *Commands) Rollback(ctx context.Context, version uint64) (betasync.RollbackResult, error) {
	return betasync.RollbackResult{Status: betasync.StatusSuccess, RolledBackFrom: version}, c.wait(ctx)
}
