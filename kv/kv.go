// Package kv keeps betasync's shared state in JetStream KV: the mapping
// versions, the schedule, and the worker lease.
//
// # Buckets
//
//   - betasync_config, key "mapping": the current Envelope. Its KV revision is
//     the version; the bucket keeps History revisions for rollback.
//   - betasync_state, key "schedule": the shared Schedule; key "overrides":
//     the runtime overrides (see OverrideStore).
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
// A renewal can also hang rather than fail (a stalled server or network),
// and the JetStream client waits 5s by default, longer than a short TTL. So
// the holder (package worker) gives every Acquire and Renew call a deadline
// of TTL/3: a renewal is sent at most TTL/3 after the last good one and
// fails at most TTL/3 later, so the holder stops acting within 2*TTL/3 of
// its last good renewal (or acquisition), before the lease can expire and
// pass to another replica. The TTL is counted from when the server stored
// that write, which is no earlier than when the holder sent it.
//
// # Fencing
//
// The schedule record carries Fence, the token of the newest holder that wrote
// it. Holder writes go through Schedules.Update with the holder's token: the
// record is read, rejected with ErrFenced when its Fence is newer than the
// token, stamped with the token, and written back by compare-and-swap on the
// revision read. A new holder stamps the record when it takes over, so every
// later write by a paused ex-holder either fails its compare-and-swap or
// finds a newer fence.
//
// # Mapping writes
//
// Mapping writes are compare-and-swap (Mappings.Put) on the revision the
// writer read before it fetched, so a lost race writes nothing. The worker
// that loses one re-reads the stored version and decides by its content and
// FetchedAt (set by the replica that stored it, when its fetch finished):
// with the same content it stores nothing; with a FetchedAt at or after the
// moment the losing reload began, it keeps that version and stores nothing,
// so a slow fetch never puts older content on top of a newer one; only a
// version fetched before the losing reload began (such as the start-up
// default) is replaced, by another compare-and-swap on its revision. The
// comparison uses the replicas' clocks, so it is only as good as their
// agreement. A stored entry that is not an envelope is reported by Latest as
// ErrCorrupt together with its revision, so a writer can store over it.
package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync"
)

// Bucket and key names: part of the public contract (pods in other
// languages and the nats CLI read them).
const (
	// BucketConfig holds the current mapping under KeyMapping, with history;
	// the KV revision of KeyMapping is the version.
	BucketConfig = "betasync_config"
	KeyMapping   = "mapping"

	// BucketState holds the shared schedule under KeySchedule.
	BucketState = "betasync_state"
	KeySchedule = "schedule"

	// BucketLock holds the worker lease under KeyLease; the bucket's TTL is
	// the lease's.
	BucketLock = "betasync_lock"
	KeyLease   = "lease"
)

// Schedule is the shared schedule record stored under KeySchedule.
type Schedule struct {
	IntervalHours float64            `json:"interval_hours,omitempty"` // 0: not scheduled
	LastRun       *time.Time         `json:"last_run,omitempty"`
	NextRun       *time.Time         `json:"next_run,omitempty"`
	LastSuccess   *time.Time         `json:"last_success,omitempty"`
	LastError     *betasync.RunError `json:"last_error,omitempty"`
	Failures      int                `json:"failures,omitempty"` // consecutive failed scheduled runs
	// Fence is the lease token of the newest holder that wrote the record;
	// a holder with an older token may no longer write it.
	Fence uint64 `json:"fence,omitempty"`
}

// Interval returns the schedule interval as a duration.
func (s *Schedule) Interval() time.Duration {
	return time.Duration(s.IntervalHours * float64(time.Hour))
}

// Defaults for Config.
const (
	DefaultHistory = 64
	DefaultLockTTL = 15 * time.Second
)

// ErrCorrupt is returned, wrapped, by Mappings.Latest when the stored entry
// is not a valid mapping envelope (not JSON, an invalid document, or a hash
// that does not match it). Latest returns it with the entry's revision, so
// a writer can store a valid version over it (Put with that revision).
var ErrCorrupt = errors.New("kv: the stored mapping is not a valid envelope")

// CorruptError is the ErrCorrupt of one stored entry: its revision, so a
// writer can store over it, and why it is not valid.
type CorruptError struct {
	Revision uint64
	Reason   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v (revision %d): %s", ErrCorrupt, e.Revision, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

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

	Overrides *OverrideStore // the runtime overrides (BucketState, KeyOverrides)
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
		Bucket:      BucketConfig,
		Description: "betasync mapping versions (key mapping; revision = version)",
		History:     uint8(cfg.History),
	})
	if err != nil {
		return nil, err
	}
	state, err := mk(jetstream.KeyValueConfig{
		Bucket:      BucketState,
		Description: "betasync shared schedule",
		History:     8,
	})
	if err != nil {
		return nil, err
	}
	lock, err := mk(jetstream.KeyValueConfig{
		Bucket:      BucketLock,
		Description: "betasync worker lease (bucket TTL = lease TTL)",
		TTL:         cfg.LockTTL,
	})
	if err != nil {
		return nil, err
	}
	return &Store{
		Mappings:  &Mappings{kv: config, nc: js.Conn()},
		Schedules: &Schedules{kv: state},
		Lease:     &Lease{kv: lock, ttl: cfg.LockTTL},
		Overrides: &OverrideStore{kv: state},
	}, nil
}

// OpenMappings binds to an existing mapping bucket (BucketConfig unless
// renamed) without creating it, for pods whose NATS user may only read.
func OpenMappings(ctx context.Context, js jetstream.JetStream, bucket string) (*Mappings, error) {
	b, err := js.KeyValue(ctx, bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, betasync.Errorf(betasync.ENOTFOUND, "bucket %s does not exist yet: no worker has started", bucket)
		}
		return nil, fmt.Errorf("kv: bucket %s: %w", bucket, err)
	}
	return &Mappings{kv: b, nc: js.Conn()}, nil
}

// Mappings stores mapping versions.
type Mappings struct {
	kv jetstream.KeyValue
	nc *nats.Conn // for the server's max_payload in errors; may be nil
}

// Latest returns the current version, validated, with Version set to its
// revision. With none stored it returns an ENOTFOUND error. When the stored
// entry is not a valid envelope it returns a *CorruptError (ErrCorrupt).
func (m *Mappings) Latest(ctx context.Context) (*betasync.Snapshot, error) {
	e, err := m.kv.Get(ctx, KeyMapping)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, betasync.Errorf(betasync.ENOTFOUND, "no mapping is stored yet")
		}
		return nil, fmt.Errorf("kv: reading the mapping: %w", err)
	}
	return decodeSnapshot(e)
}

// History returns the stored versions, oldest first. Entries that are not
// valid envelopes (see ErrCorrupt) are left out: they can never be restored.
func (m *Mappings) History(ctx context.Context) ([]*betasync.Snapshot, error) {
	entries, err := m.kv.History(ctx, KeyMapping)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("kv: mapping history: %w", err)
	}
	out := make([]*betasync.Snapshot, 0, len(entries))
	for _, e := range entries {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		snap, err := decodeSnapshot(e)
		if err != nil {
			continue
		}
		out = append(out, snap)
	}
	return out, nil
}

// Put stores snap as a new version if the current revision is still
// expected (0: nothing stored yet), and returns the new version. A lost race
// is an ECONFLICT error and writes nothing. An envelope larger than the NATS
// server's max_payload is an EUPSTREAM error: the source sent a document too
// big for this deployment. The stored envelope leaves out the version: the
// revision is the version.
func (m *Mappings) Put(ctx context.Context, snap *betasync.Snapshot, expected uint64) (uint64, error) {
	stored := *snap
	stored.Version = 0
	data, err := stored.MarshalJSON() // not json.Marshal, which would scan it once more
	if err != nil {
		return 0, fmt.Errorf("kv: encoding the mapping: %w", err)
	}
	var rev uint64
	if expected == 0 {
		rev, err = m.kv.Create(ctx, KeyMapping, data)
	} else {
		rev, err = m.kv.Update(ctx, KeyMapping, data, expected)
	}
	if isConflict(err) {
		return 0, betasync.Errorf(betasync.ECONFLICT, "another writer stored a mapping version first")
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		limit := "the NATS server's max_payload"
		if m.nc != nil {
			limit = fmt.Sprintf("the NATS server's max_payload (%d bytes)", m.nc.MaxPayload())
		}
		return 0, betasync.Errorf(betasync.EUPSTREAM, "the mapping envelope is %d bytes, more than %s; raise max_payload", len(data), limit)
	}
	if err != nil {
		return 0, fmt.Errorf("kv: storing the mapping: %w", err)
	}
	return rev, nil
}

// decodeSnapshot decodes and validates a stored envelope.
func decodeSnapshot(e jetstream.KeyValueEntry) (*betasync.Snapshot, error) {
	snap := new(betasync.Snapshot)
	if err := snap.UnmarshalJSON(e.Value()); err != nil { // not json.Unmarshal, which would scan it once more first
		return nil, &CorruptError{Revision: e.Revision(), Reason: betasync.ErrorMessage(err)}
	}
	snap.Version = e.Revision()
	return snap, nil
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Schedules stores the shared schedule.
type Schedules struct{ kv jetstream.KeyValue }

// Get returns the schedule and its revision; a zero Schedule and revision 0
// when none is stored.
func (s *Schedules) Get(ctx context.Context) (Schedule, uint64, error) {
	e, err := s.kv.Get(ctx, KeySchedule)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Schedule{}, 0, nil
	}
	if err != nil {
		return Schedule{}, 0, fmt.Errorf("kv: reading the schedule: %w", err)
	}
	var sch Schedule
	if err := json.Unmarshal(e.Value(), &sch); err != nil {
		return Schedule{}, e.Revision(), &CorruptScheduleError{Revision: e.Revision(), Value: e.Value(), Reason: err.Error()}
	}
	return sch, e.Revision(), nil
}

// CorruptScheduleError is a stored schedule record that does not decode.
// Get returns it with the record's revision; Update writes over it.
type CorruptScheduleError struct {
	Revision uint64
	Value    []byte // what is stored
	Reason   string
}

func (e *CorruptScheduleError) Error() string {
	return fmt.Sprintf("kv: schedule revision %d is corrupt: %s", e.Revision, e.Reason)
}

// Update applies fn to the stored schedule and writes the result by
// compare-and-swap, retrying on a lost race. With a non-zero fence (a lease
// holder's token) the write is fenced: it fails with ErrFenced when a newer
// holder has written, and stamps the record with fence. A corrupt record
// (CorruptScheduleError) is written over, from a zero Schedule. fn may return an
// error to abort without writing; it may be called more than once.
func (s *Schedules) Update(ctx context.Context, fence uint64, fn func(*Schedule) error) (Schedule, error) {
	const attempts = 32
	for attempt := range attempts {
		if attempt > 0 {
			// Writers that lost a race back off for a random, growing
			// delay, so a burst of them spreads out instead of colliding
			// again on every round.
			select {
			case <-ctx.Done():
				return Schedule{}, fmt.Errorf("kv: writing the schedule: %w", ctx.Err())
			case <-time.After(retryDelay(attempt)):
			}
		}
		sch, rev, err := s.Get(ctx)
		if _, corrupt := errors.AsType[*CorruptScheduleError](err); corrupt {
			// The only way to repair it: write a valid record over it,
			// starting from nothing. (Its fence is lost with it; the
			// holder stamps its token again.)
			sch, err = Schedule{}, nil
		}
		if err != nil {
			return Schedule{}, err
		}
		if fence != 0 {
			if sch.Fence > fence {
				return Schedule{}, ErrFenced
			}
			sch.Fence = fence
		}
		if err := fn(&sch); err != nil {
			return Schedule{}, err
		}
		data, err := json.Marshal(sch)
		if err != nil {
			return Schedule{}, fmt.Errorf("kv: encoding the schedule: %w", err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, KeySchedule, data)
		} else {
			_, err = s.kv.Update(ctx, KeySchedule, data, rev)
		}
		if isConflict(err) {
			continue
		}
		if err != nil {
			return Schedule{}, fmt.Errorf("kv: writing the schedule: %w", err)
		}
		return sch, nil
	}
	return Schedule{}, betasync.Errorf(betasync.ECONFLICT, "the schedule changed under %d attempts to write it", attempts)
}

// retryDelay is a random delay, up to 1ms doubling per attempt and capped at
// 64ms, before the attempt-th retry of a lost compare-and-swap.
func retryDelay(attempt int) time.Duration {
	ceiling := time.Millisecond << min(attempt-1, 6)
	return rand.N(ceiling) + 1
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
	rev, err := l.kv.Create(ctx, KeyLease, []byte(holder))
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
	next, err := l.kv.Update(ctx, KeyLease, []byte(holder), rev)
	if isConflict(err) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrLeaseLost
	}
	if err != nil {
		return 0, fmt.Errorf("kv: renewing the lease: %w", err)
	}
	return next, nil
}

// Release gives up the lease held at revision rev, so another replica can
// take it at once. A lease no longer held at rev (lost, or already
// released) is left alone and reported as ErrLeaseLost.
func (l *Lease) Release(ctx context.Context, rev uint64) error {
	err := l.kv.Delete(ctx, KeyLease, jetstream.LastRevision(rev))
	if isConflict(err) {
		return ErrLeaseLost // not ours at rev any more: nothing released
	}
	if err != nil {
		return fmt.Errorf("kv: releasing the lease: %w", err)
	}
	return nil
}

// Holder returns the id of the replica holding the lease, or "" if none.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	e, err := l.kv.Get(ctx, KeyLease)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("kv: reading the lease: %w", err)
	}
	return string(e.Value()), nil
}
