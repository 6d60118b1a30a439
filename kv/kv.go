// Package kv keeps betasync's shared state in JetStream KV: the mapping
// versions, the schedule, and the worker lease.
//
// # Buckets
//
//   - betasync_config, key "mapping": the current Envelope. Its KV revision is
//     the version; the bucket keeps History revisions for rollback.
//   - betasync_state, key "schedule": the shared betasync.Schedule.
//   - betasync_lock, key "lease": the id of the replica holding the lease.
//     The bucket's TTL (MaxAge) is the lease TTL.
//
// # The lease protocol
//
// A replica acquires the lease with Create (create-if-absent): it succeeds only
// when the key is absent, deleted, or aged out of the bucket. The revision it
// returns is the holder's fencing token for the whole tenure. The holder
// renews with Update (compare-and-swap on the revision it last wrote) about
// every TTL/3; each renewal writes a new message, whose age restarts the
// bucket TTL. A bucket-wide TTL is used rather than a per-key TTL because
// Update does not carry a per-key TTL forward. A renewal that fails means
// another replica may hold the lease: the holder stops acting at once. On
// shutdown the holder deletes the key at its last revision, so another
// replica can acquire it immediately instead of waiting for the TTL.
//
// # Fencing
//
// The schedule record carries Fence, the token of the newest holder that wrote
// it. Holder writes go through Schedules.Update with the holder's token: the
// record is read, rejected with ErrFenced when its Fence is newer than the
// token, stamped with the token, and written back by compare-and-swap on the
// revision read. A new holder stamps the record when it takes over, so every
// later write by a paused ex-holder either fails its compare-and-swap or
// finds a newer fence. Mapping writes are compare-and-swap on the revision
// read before the fetch, so a writer whose view is stale can never replace a
// version stored after it looked.
package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync"
)

// Defaults for Config.
const (
	DefaultHistory = 64
	DefaultLockTTL = 15 * time.Second
)

// ErrFenced is returned by a holder write when a newer holder has written.
var ErrFenced = betasync.Errorf(betasync.ECONFLICT, "a newer lease holder has taken over; this replica may no longer write")

// Config says how to create the buckets.
type Config struct {
	Replicas int           // bucket replicas: 1 for a single server, 3 on a cluster
	History  int           // mapping revisions kept (at least 32); DefaultHistory when 0
	LockTTL  time.Duration // the lease TTL; DefaultLockTTL when 0
	Storage  jetstream.StorageType
}

// Store is the worker's view of all three buckets.
type Store struct {
	Mappings  *Mappings
	Schedules *Schedules
	Lease     *Lease
}

// Ensure creates the buckets, or updates them to cfg, and returns the store.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.History == 0 {
		cfg.History = DefaultHistory
	}
	if cfg.History < 32 || cfg.History > 64 {
		return nil, fmt.Errorf("kv: history must be from 32 to 64 revisions, got %d", cfg.History)
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	if cfg.LockTTL < time.Second {
		return nil, fmt.Errorf("kv: lock TTL must be at least 1s, got %s", cfg.LockTTL)
	}
	mk := func(c jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		c.Replicas, c.Storage = cfg.Replicas, cfg.Storage
		b, err := js.CreateOrUpdateKeyValue(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("kv: bucket %s: %w", c.Bucket, err)
		}
		return b, nil
	}
	config, err := mk(jetstream.KeyValueConfig{
		Bucket:      betasync.BucketConfig,
		Description: "betasync mapping versions (key mapping; revision = version)",
		History:     uint8(cfg.History),
	})
	if err != nil {
		return nil, err
	}
	state, err := mk(jetstream.KeyValueConfig{
		Bucket:      betasync.BucketState,
		Description: "betasync shared schedule",
		History:     8,
	})
	if err != nil {
		return nil, err
	}
	lock, err := mk(jetstream.KeyValueConfig{
		Bucket:      betasync.BucketLock,
		Description: "betasync worker lease (bucket TTL = lease TTL)",
		TTL:         cfg.LockTTL,
	})
	if err != nil {
		return nil, err
	}
	return &Store{
		Mappings:  &Mappings{kv: config},
		Schedules: &Schedules{kv: state},
		Lease:     &Lease{kv: lock, ttl: cfg.LockTTL},
	}, nil
}

// OpenMappings binds to an existing mapping bucket (betasync.BucketConfig
// unless renamed) without creating it, for pods whose NATS user may only
// read.
func OpenMappings(ctx context.Context, js jetstream.JetStream, bucket string) (*Mappings, error) {
	b, err := js.KeyValue(ctx, bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, betasync.Errorf(betasync.ENOTFOUND, "bucket %s does not exist yet: no worker has started", bucket)
		}
		return nil, fmt.Errorf("kv: bucket %s: %w", bucket, err)
	}
	return &Mappings{kv: b}, nil
}

// Mappings stores mapping versions.
type Mappings struct{ kv jetstream.KeyValue }

// Latest returns the current version, with Version set to its revision.
// With none stored it returns an ENOTFOUND error.
func (m *Mappings) Latest(ctx context.Context) (betasync.Envelope, error) {
	e, err := m.kv.Get(ctx, betasync.KeyMapping)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return betasync.Envelope{}, betasync.Errorf(betasync.ENOTFOUND, "no mapping is stored yet")
		}
		return betasync.Envelope{}, fmt.Errorf("kv: reading the mapping: %w", err)
	}
	return decodeEnvelope(e)
}

// History returns the stored versions, oldest first.
func (m *Mappings) History(ctx context.Context) ([]betasync.Envelope, error) {
	entries, err := m.kv.History(ctx, betasync.KeyMapping)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("kv: mapping history: %w", err)
	}
	out := make([]betasync.Envelope, 0, len(entries))
	for _, e := range entries {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		env, err := decodeEnvelope(e)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// Put stores env as a new version if the current revision is still
// expected (0: nothing stored yet), and returns the new version. A lost race
// is an ECONFLICT error and writes nothing.
func (m *Mappings) Put(ctx context.Context, env betasync.Envelope, expected uint64) (uint64, error) {
	env.Version = 0
	data, err := json.Marshal(env)
	if err != nil {
		return 0, fmt.Errorf("kv: encoding the mapping: %w", err)
	}
	var rev uint64
	if expected == 0 {
		rev, err = m.kv.Create(ctx, betasync.KeyMapping, data)
	} else {
		rev, err = m.kv.Update(ctx, betasync.KeyMapping, data, expected)
	}
	if isConflict(err) {
		return 0, betasync.Errorf(betasync.ECONFLICT, "another writer stored a mapping version first")
	}
	if err != nil {
		return 0, fmt.Errorf("kv: storing the mapping: %w", err)
	}
	return rev, nil
}

func decodeEnvelope(e jetstream.KeyValueEntry) (betasync.Envelope, error) {
	var env betasync.Envelope
	if err := json.Unmarshal(e.Value(), &env); err != nil {
		return betasync.Envelope{}, fmt.Errorf("kv: mapping revision %d is not an envelope: %w", e.Revision(), err)
	}
	env.Version = e.Revision()
	return env, nil
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Schedules stores the shared schedule.
type Schedules struct{ kv jetstream.KeyValue }

// Get returns the schedule and its revision; a zero Schedule and revision 0
// when none is stored.
func (s *Schedules) Get(ctx context.Context) (betasync.Schedule, uint64, error) {
	e, err := s.kv.Get(ctx, betasync.KeySchedule)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return betasync.Schedule{}, 0, nil
	}
	if err != nil {
		return betasync.Schedule{}, 0, fmt.Errorf("kv: reading the schedule: %w", err)
	}
	var sch betasync.Schedule
	if err := json.Unmarshal(e.Value(), &sch); err != nil {
		return betasync.Schedule{}, 0, fmt.Errorf("kv: schedule revision %d is corrupt: %w", e.Revision(), err)
	}
	return sch, e.Revision(), nil
}

// Update applies fn to the stored schedule and writes the result by
// compare-and-swap, retrying on a lost race. With a non-zero fence (a lease
// holder's token) the write is fenced: it fails with ErrFenced when a newer
// holder has written, and stamps the record with fence. fn may return an
// error to abort without writing; it may be called more than once.
func (s *Schedules) Update(ctx context.Context, fence uint64, fn func(*betasync.Schedule) error) (betasync.Schedule, error) {
	const attempts = 32
	for attempt := range attempts {
		if attempt > 0 {
			// Writers that lost a race back off for a random, growing
			// delay, so a burst of them spreads out instead of colliding
			// again on every round.
			if err := sleepCtx(ctx, retryDelay(attempt)); err != nil {
				return betasync.Schedule{}, fmt.Errorf("kv: writing the schedule: %w", err)
			}
		}
		sch, rev, err := s.Get(ctx)
		if err != nil {
			return betasync.Schedule{}, err
		}
		if fence != 0 {
			if sch.Fence > fence {
				return betasync.Schedule{}, ErrFenced
			}
			sch.Fence = fence
		}
		if err := fn(&sch); err != nil {
			return betasync.Schedule{}, err
		}
		data, err := json.Marshal(sch)
		if err != nil {
			return betasync.Schedule{}, fmt.Errorf("kv: encoding the schedule: %w", err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, betasync.KeySchedule, data)
		} else {
			_, err = s.kv.Update(ctx, betasync.KeySchedule, data, rev)
		}
		if isConflict(err) {
			continue
		}
		if err != nil {
			return betasync.Schedule{}, fmt.Errorf("kv: writing the schedule: %w", err)
		}
		return sch, nil
	}
	return betasync.Schedule{}, betasync.Errorf(betasync.ECONFLICT, "the schedule changed under %d attempts to write it", attempts)
}

// retryDelay is a random delay, up to 1ms doubling per attempt and capped at
// 64ms, before the attempt-th retry of a lost compare-and-swap.
func retryDelay(attempt int) time.Duration {
	ceiling := time.Millisecond << min(attempt-1, 6)
	return rand.N(ceiling) + 1
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ErrLeaseHeld is returned by Acquire while another replica holds the lease.
var ErrLeaseHeld = errors.New("kv: the lease is held by another replica")

// ErrLeaseLost is returned by Renew when the lease is no longer ours.
var ErrLeaseLost = errors.New("kv: the lease was lost")

// Lease is the worker lease (see the package doc).
type Lease struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// TTL returns the lease TTL.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Acquire takes the lease for holder if nobody holds it, returning the
// revision, which is also the tenure's fencing token.
func (l *Lease) Acquire(ctx context.Context, holder string) (uint64, error) {
	rev, err := l.kv.Create(ctx, betasync.KeyLease, []byte(holder))
	if isConflict(err) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("kv: acquiring the lease: %w", err)
	}
	return rev, nil
}

// Renew extends the lease held at revision rev and returns the new revision.
func (l *Lease) Renew(ctx context.Context, holder string, rev uint64) (uint64, error) {
	next, err := l.kv.Update(ctx, betasync.KeyLease, []byte(holder), rev)
	if isConflict(err) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrLeaseLost
	}
	if err != nil {
		return 0, fmt.Errorf("kv: renewing the lease: %w", err)
	}
	return next, nil
}

// Release gives up the lease held at revision rev, so another replica can
// take it at once. Releasing a lease already lost is not an error.
func (l *Lease) Release(ctx context.Context, rev uint64) error {
	err := l.kv.Delete(ctx, betasync.KeyLease, jetstream.LastRevision(rev))
	if err != nil && !isConflict(err) {
		return fmt.Errorf("kv: releasing the lease: %w", err)
	}
	return nil
}

// Holder returns the id of the replica holding the lease, or "" if none.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	e, err := l.kv.Get(ctx, betasync.KeyLease)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("kv: reading the lease: %w", err)
	}
	return string(e.Value()), nil
}
