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
		return nil, e.Revision(), &CorruptOverridesError{Revision: e.Revision(), Value: e.Value(), Reason: err.Error()}
	}
	if o == nil {
		o = betasync.Overrides{}
	}
	return o, e.Revision(), nil
}

// CorruptOverridesError is a stored overrides record that does not
// decode. Get returns it with the record's revision; Update writes over it,
// starting from the set the caller recovered (see Update).
type CorruptOverridesError struct {
	Revision uint64
	Value    []byte
	Reason   string
}

func (e *CorruptOverridesError) Error() string {
	return fmt.Sprintf("kv: overrides revision %d are corrupt: %s", e.Revision, e.Reason)
}

// Update applies fn to the stored overrides and writes the result by
// compare-and-swap, retrying on a lost race; it returns what it wrote. fn
// may return an error to abort without writing; it may be called more than
// once. When the stored record is corrupt, fn starts from a copy of
// recovered (the overrides the caller knows were last applied) and the
// result is written over it.
func (s *OverrideStore) Update(ctx context.Context, recovered betasync.Overrides, fn func(betasync.Overrides) error) (betasync.Overrides, error) {
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
		if _, corrupt := errors.AsType[*CorruptOverridesError](err); corrupt {
			o, err = betasync.Overrides{}, nil
			for p, betas := range recovered {
				for beta, v := range betas {
					o.Set(p, beta, v)
				}
			}
		}
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
