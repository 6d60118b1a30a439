package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/kv"
)

// storeAttempts bounds the compare-and-swap attempts of one mapping write
// (a refresh or an override change) that keeps losing races.
const storeAttempts = 32

// backoff waits before the attempt-th retry of a lost compare-and-swap: a
// random delay up to 1ms, doubling per attempt, capped at 64ms, so writers
// that collide spread out. The first attempt does not wait.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	d := rand.N(time.Millisecond<<min(attempt-1, 6)) + 1
	select {
	case <-ctx.Done():
		return betasync.Errorf(betasync.EUNAVAILABLE, "storing the mapping: %v", ctx.Err())
	case <-time.After(d):
		return nil
	}
}

// mergeOverrides returns base with the stored overrides merged over its
// upstream document (base's own overrides are replaced). Callers read the
// stored version first and the overrides after it: an override writer
// stores its overrides before it reads the stored version, so either this
// read sees its change, or its version is stored after the one this caller
// read and this caller's compare-and-swap fails and retries.
func (w *Worker) mergeOverrides(ctx context.Context, base *betasync.Snapshot) (*betasync.Snapshot, error) {
	o, err := w.readOverrides(ctx)
	if err != nil {
		return nil, err
	}
	if o.Len() == 0 && len(base.Overrides) == 0 {
		return base, nil
	}
	next, skipped, err := base.WithOverrides(o)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		w.log.Warn("override not applied: its provider has no section in the mapping", "provider", s.Provider, "beta", s.Beta)
	}
	return next, nil
}

// readOverrides returns the stored overrides. When their record is corrupt
// it returns the overrides the stored version carries (the last ones
// applied), so that no write is blocked and no override silently lost; the
// next override change writes a valid record over it.
func (w *Worker) readOverrides(ctx context.Context) (betasync.Overrides, error) {
	o, _, err := w.overrides.Get(ctx)
	corrupt, isCorrupt := errors.AsType[*kv.CorruptOverridesError](err)
	if !isCorrupt {
		if err != nil {
			return nil, betasync.Errorf(betasync.EUNAVAILABLE, "reading the overrides: %v", err)
		}
		return o, nil
	}
	recovered := betasync.Overrides{}
	if latest, _, err := w.stored(ctx); err == nil && latest != nil {
		recovered = latest.Overrides.Values()
	}
	w.log.Warn("the overrides record is corrupt; using the overrides the stored version carries until an override change rewrites it",
		"revision", corrupt.Revision, "err", corrupt.Reason, "stored", truncate(string(corrupt.Value), 512), "recovered", recovered.Len())
	return recovered, nil
}

// logRedundant warns about overrides the upstream document now agrees with.
func logRedundant(log *slog.Logger, res betasync.ReloadResult) {
	for _, r := range res.RedundantOverrides {
		value := "null"
		if r.Value != nil {
			value = *r.Value
		}
		log.Warn("override is redundant: the upstream mapping now agrees with it; delete it", "version", res.Version,
			"provider", r.Provider, "beta", r.Beta, "value", value)
	}
}

// SetOverride validates the override against the current version, stores
// it, and stores and announces a new version with it merged.
func (w *Worker) SetOverride(ctx context.Context, provider, beta string, value *string) (betasync.OverrideResult, error) {
	latest, _, err := w.stored(ctx)
	if err != nil {
		return betasync.OverrideResult{}, err
	}
	if latest == nil {
		return betasync.OverrideResult{}, betasync.Errorf(betasync.EUNAVAILABLE, "no valid mapping is stored yet")
	}
	section, err := latest.CheckOverride(provider, beta, value)
	if err != nil {
		return betasync.OverrideResult{}, err
	}
	o, err := w.overrides.Update(ctx, latest.Overrides.Values(), func(o betasync.Overrides) error {
		o.Set(section, beta, value)
		return nil
	})
	if err != nil {
		return betasync.OverrideResult{}, storeErr("storing the override", err)
	}
	res, err := w.storeOverrides(ctx, o, "set")
	res.Provider, res.Beta, res.Value = section, beta, value
	w.logOverride(ctx, "override.set", res, err)
	return res, err
}

// DeleteOverride removes an override (provider may be an alias) and stores
// and announces a new version without it.
func (w *Worker) DeleteOverride(ctx context.Context, provider, beta string) (betasync.OverrideResult, error) {
	latest, _, err := w.stored(ctx)
	if err != nil {
		return betasync.OverrideResult{}, err
	}
	section := provider
	var recovered betasync.Overrides
	if latest != nil {
		recovered = latest.Overrides.Values()
	}
	o, err := w.overrides.Update(ctx, recovered, func(o betasync.Overrides) error {
		if o.Delete(provider, beta) {
			return nil
		}
		if latest != nil {
			if target := latest.Resolve(provider); o.Delete(target, beta) {
				section = target
				return nil
			}
		}
		return betasync.Errorf(betasync.ENOTFOUND, "no override of beta %q for provider %q", beta, provider)
	})
	if err != nil {
		return betasync.OverrideResult{}, storeErr("deleting the override", err)
	}
	res, err := w.storeOverrides(ctx, o, "deleted")
	res.Provider, res.Beta, res.Deleted = section, beta, true
	w.logOverride(ctx, "override.delete", res, err)
	return res, err
}

// ListOverrides returns the stored overrides and those the current version
// does not carry.
func (w *Worker) ListOverrides(ctx context.Context) (betasync.OverrideList, error) {
	o, err := w.readOverrides(ctx)
	if err != nil {
		return betasync.OverrideList{}, err
	}
	latest, _, err := w.stored(ctx)
	if err != nil {
		return betasync.OverrideList{}, err
	}
	list := betasync.OverrideList{Status: betasync.StatusSuccess, Overrides: o}
	if latest != nil {
		list.Version, list.Hash = latest.Version, latest.Hash()
		for p, betas := range o {
			for beta, v := range betas {
				if _, ok := latest.Overrides[p][beta]; !ok {
					list.Inactive = append(list.Inactive, betasync.OverrideRef{Provider: p, Beta: beta, Value: v})
				}
			}
		}
		betasync.SortOverrideRefs(list.Inactive)
	}
	return list, nil
}

// storeOverrides stores and announces the stored version with the current
// overrides merged (source "override"), unless it already has them. On a
// lost compare-and-swap it re-reads the version and the overrides and
// merges again, so neither a concurrent reload nor a concurrent override
// change is lost. o is the override set this call wrote, for the reply.
func (w *Worker) storeOverrides(ctx context.Context, o betasync.Overrides, what string) (betasync.OverrideResult, error) {
	res := betasync.OverrideResult{Status: betasync.StatusSuccess, Overrides: o}
	for attempt := range storeAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return res, err
		}
		latest, expected, err := w.stored(ctx)
		if err != nil {
			return res, err
		}
		if latest == nil {
			return res, betasync.Errorf(betasync.EUNAVAILABLE, "no valid mapping is stored yet; the override is stored and applies to the next version")
		}
		next, err := w.mergeOverrides(ctx, latest)
		if err != nil {
			return res, err
		}
		if latest.SameContent(next) {
			res.Message = fmt.Sprintf("override %s: version %d already has it", what, latest.Version)
			res.Version, res.Hash, res.Timestamp = latest.Version, latest.Hash(), w.now()
			return res, nil
		}
		next.Source = betasync.SourceOverride
		next.Actor = actorName(ctx, TriggerManual)
		next.RolledBackFrom = 0
		next.Changes = betasync.Diff(latest.Mapping, next.Mapping)
		rev, err := w.mappings.Put(ctx, next, expected)
		if betasync.ErrorCode(err) == betasync.ECONFLICT {
			continue
		}
		if err != nil {
			return res, storeErr("storing the mapping", err)
		}
		next.Version = rev
		if err := w.announce(ctx, next); err != nil {
			w.log.Warn("announcing the new version failed; pods will catch up from KV", "version", rev, "err", err)
		}
		res.Message = fmt.Sprintf("override %s: new version %d", what, rev)
		res.Version, res.Hash, res.Changed, res.Timestamp = rev, next.Hash(), true, w.now()
		res.Changes = next.Changes
		return res, nil
	}
	return res, betasync.Errorf(betasync.ECONFLICT, "the stored mapping kept changing while storing the override; the override is stored and applies to the next version")
}

// logOverride records an override change in the audit log.
func (w *Worker) logOverride(ctx context.Context, action string, res betasync.OverrideResult, err error) {
	attrs := []any{"provider", res.Provider, "beta", res.Beta, "version", res.Version, "changed", res.Changed}
	if res.Value != nil {
		attrs = append(attrs, "value", *res.Value)
	} else if !res.Deleted {
		attrs = append(attrs, "value", "null")
	}
	w.audit(ctx, action, err, attrs...)
}
