package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync"
)

// KeyOverrides is the key, in BucketState, of the runtime overrides: one
// JSON document {provider: {beta: name | null}} (betasync.Overrides),
// written by compare-and-swap.
const KeyOverrides = "overrides"

// OverrideStore stores the runtime overrides.
type OverrideStore struct{ kv jetstream.KeyValue }

// Get returns the stored overrides (never nil) and their revision; an
// empty set and revision 0 when none are stored.
func (s *OverrideStore) Get(ctx context.Context) (betasync.Overrides, uint64, error) {
	e, err := retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, KeyOverrides) })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return betasync.Overrides{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("kv: reading the overrides: %w", err)
	}
	o := betasync.Overrides{}
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return nil, 0, fmt.Errorf("kv: overrides revision %d are corrupt: %w", e.Revision(), err)
	}
	if o == nil {
		o = betasync.Overrides{}
	}
	return o, e.Revision(), nil
}

// Update applies fn to the stored overrides and writes the result by
// compare-and-swap, retrying on a lost race; it returns what it wrote. fn
// may return an error to abort without writing; it may be called more than
// once.
func (s *OverrideStore) Update(ctx context.Context, fn func(betasync.Overrides) error) (betasync.Overrides, error) {
	const attempts = 32
	for attempt := range attempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("kv: writing the overrides: %w", ctx.Err())
			case <-time.After(retryDelay(attempt)):
			}
		}
		o, rev, err := s.Get(ctx)
		if err != nil {
			return nil, err
		}
		if err := fn(o); err != nil {
			return nil, err
		}
		data, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("kv: encoding the overrides: %w", err)
		}
		err = writeOnce(ctx, s.kv, KeyOverrides, data, rev)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kv: writing the overrides: %w", err)
		}
		return o, nil
	}
	return nil, betasync.Errorf(betasync.ECONFLICT, "the overrides changed under %d attempts to write them", attempts)
}
