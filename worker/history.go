package worker

import (
	"context"
	"fmt"
	"slices"

	"github.com/betasync/betasync"
)

// History lists the stored versions, newest first, at most limit of them
// (betasync.DefaultHistoryLimit when 0).
func (w *Worker) History(ctx context.Context, limit int) (betasync.HistoryResult, error) {
	if err := betasync.ValidateLimit(limit); err != nil {
		return betasync.HistoryResult{}, err
	}
	if limit == 0 {
		limit = betasync.DefaultHistoryLimit
	}
	versions, err := w.mappings.History(ctx)
	if err != nil {
		return betasync.HistoryResult{}, storeErr("reading the history", err)
	}
	res := betasync.HistoryResult{Status: betasync.StatusSuccess, Kept: kept(versions), Versions: []betasync.HistoryEntry{}}
	if n := len(versions); n > 0 {
		res.Current = versions[n-1].Version
	}
	for _, s := range slices.Backward(versions) {
		if len(res.Versions) == limit {
			break
		}
		res.Versions = append(res.Versions, betasync.EntryOf(s))
	}
	res.Count = len(res.Versions)
	return res, nil
}

// HistoryVersion returns one stored version, document included.
func (w *Worker) HistoryVersion(ctx context.Context, version uint64) (*betasync.Snapshot, error) {
	if version == 0 {
		return nil, betasync.Errorf(betasync.EINVALID, "version must be at least 1, got 0")
	}
	versions, err := w.mappings.History(ctx)
	if err != nil {
		return nil, storeErr("reading the history", err)
	}
	return find(versions, version)
}

// Rollback stores version's document as a new version, with source
// rollback, and announces it. It is a compare-and-swap on the current
// version, like a reload, and is serialized with this replica's reloads
// (see Worker.writes); a lost race with another replica re-reads and tries
// again. A document identical to the current one stores nothing
// (changed: false).
func (w *Worker) Rollback(ctx context.Context, version uint64) (res betasync.RollbackResult, err error) {
	defer func() {
		w.audit(ctx, "rollback", err, "rolled_back_from", version, "version", res.Version, "changed", res.Changed)
	}()
	if version == 0 {
		return res, betasync.Errorf(betasync.EINVALID, "version must be at least 1, got 0")
	}
	release, err := w.lockWrites(ctx)
	if err != nil {
		return res, err
	}
	defer release()
	for range 3 {
		versions, err := w.mappings.History(ctx)
		if err != nil {
			return res, storeErr("reading the history", err)
		}
		target, err := find(versions, version)
		if err != nil {
			return res, err
		}
		latest, expected, err := w.stored(ctx)
		if err != nil {
			return res, err
		}
		// Version N's upstream document, with today's overrides over it:
		// overrides survive rollbacks.
		base := betasync.NewSnapshot(target.Mapping, betasync.SourceRollback, w.now())
		base.Overrides = target.Overrides
		snap, err := w.mergeOverrides(ctx, base)
		if err != nil {
			return res, err
		}
		if latest.SameContent(snap) {
			return w.rollbackResult(latest, version, false), nil
		}
		snap.Source, snap.FetchedAt = betasync.SourceRollback, w.now()
		snap.URL = target.URL
		snap.Actor = actorName(ctx, TriggerManual)
		snap.RolledBackFrom = version
		if latest != nil {
			snap.Changes = betasync.Diff(latest.Mapping, snap.Mapping)
		}
		rev, err := w.mappings.Put(ctx, snap, expected)
		if betasync.ErrorCode(err) == betasync.ECONFLICT {
			continue // another replica stored a version: roll back over it
		}
		if err != nil {
			return res, storeErr("storing the rollback", err)
		}
		snap.Version = rev
		if err := w.announce(ctx, snap); err != nil {
			w.log.Warn("announcing the rollback failed; pods will catch up from KV", "version", rev, "err", err)
		}
		return w.rollbackResult(snap, version, true), nil
	}
	return res, betasync.Errorf(betasync.ECONFLICT, "the stored mapping kept changing while rolling back")
}

func (w *Worker) rollbackResult(snap *betasync.Snapshot, from uint64, changed bool) betasync.RollbackResult {
	msg := fmt.Sprintf("anthropic-beta mapping already has version %d's document: version %d unchanged", from, snap.Version)
	var changes betasync.Changes
	if changed {
		msg = fmt.Sprintf("anthropic-beta mapping rolled back to version %d: new version %d", from, snap.Version)
		changes = snap.Changes
	}
	return betasync.RollbackResult{
		Status:         betasync.StatusSuccess,
		Message:        msg,
		ProvidersCount: len(snap.Providers()),
		Timestamp:      w.now(),
		Version:        snap.Version,
		Changed:        changed,
		Source:         snap.Source,
		Hash:           snap.Hash(),
		RolledBackFrom: from,
		Changes:        changes,
	}
}

// find returns version from versions (oldest first), or ENOTFOUND naming
// the versions kept.
func find(versions []*betasync.Snapshot, version uint64) (*betasync.Snapshot, error) {
	for _, s := range versions {
		if s.Version == version {
			return s, nil
		}
	}
	return nil, betasync.NotKept(version, betasync.VersionRanges(kept(versions)))
}

func kept(versions []*betasync.Snapshot) []uint64 {
	out := make([]uint64, len(versions))
	for i, s := range versions {
		out[i] = s.Version
	}
	return out
}

// lockWrites serializes this replica's mapping writes (reloads of every
// kind and rollbacks), so a rollback never races a reload on the same
// replica; writes from other replicas are ordered by compare-and-swap.
func (w *Worker) lockWrites(ctx context.Context) (release func(), err error) {
	select {
	case w.writes <- struct{}{}:
		return func() { <-w.writes }, nil
	case <-ctx.Done():
		return nil, betasync.Errorf(betasync.EUNAVAILABLE, "another reload or rollback is still running: %v", ctx.Err())
	}
}

// actorName is who acts in ctx, or trigger (startup, schedule) when the
// worker acts on its own.
func actorName(ctx context.Context, trigger string) string {
	if a, ok := betasync.ActorFrom(ctx); ok && a.Name != "" {
		return a.Name
	}
	return trigger
}

// audit logs one admin action at INFO: who (actor, and addr when known),
// what (action and attrs) and the outcome ("ok", or "error" with the
// error's public message). It never logs a key: the actor is the key's
// name. Every admin command calls it once, whatever its outcome.
func (w *Worker) audit(ctx context.Context, action string, outcome error, attrs ...any) {
	a, ok := betasync.ActorFrom(ctx)
	if !ok {
		a.Name = "unknown"
	}
	args := []any{"audit", true, "action", action, "actor", a.Name}
	if a.Addr != "" {
		args = append(args, "addr", a.Addr)
	}
	if outcome != nil {
		args = append(args, "outcome", "error", "code", betasync.ErrorCode(outcome), "err", betasync.ErrorMessage(outcome))
	} else {
		args = append(args, "outcome", "ok")
	}
	w.log.Info("admin action", append(args, attrs...)...)
}
