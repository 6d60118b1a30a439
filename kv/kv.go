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
	"bytes"
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
	IntervalHours float64 `json:"interval_hours,omitempty"` // 0: not scheduled
	// ScheduledAt is when the schedule was last set; absent in records
	// written before it existed, and when not scheduled.
	ScheduledAt *time.Time         `json:"scheduled_at,omitempty"`
	LastRun     *time.Time         `json:"last_run,omitempty"`
	NextRun     *time.Time         `json:"next_run,omitempty"`
	LastSuccess *time.Time         `json:"last_success,omitempty"`
	LastError   *betasync.RunError `json:"last_error,omitempty"`
	Failures    int                `json:"failures,omitempty"` // consecutive failed scheduled runs
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
	// Signer, when set, signs every mapping version as it is stored, under
	// the version number it will get (see Mappings.Put), and Verifier, when
	// set, treats a stored version it rejects as corrupt (see Latest).
	Signer   *betasync.Signer
	Verifier *betasync.Verifier
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
		Mappings:  &Mappings{kv: config, nc: js.Conn(), js: js, signer: cfg.Signer, verifier: cfg.Verifier},
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
	return &Mappings{kv: b, nc: js.Conn(), js: js}, nil
}

// LastRevision returns the bucket stream's last sequence, from its leader
// (stream info is answered by the leader only, where a direct get may be
// answered by a follower that lags): no version above it has ever been
// stored.
func (m *Mappings) LastRevision(ctx context.Context) (uint64, error) {
	stream, err := m.js.Stream(ctx, "KV_"+m.kv.Bucket())
	if err != nil {
		return 0, fmt.Errorf("kv: the mapping stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("kv: the mapping stream: %w", err)
	}
	return info.State.LastSeq, nil
}

// Mappings stores mapping versions.
type Mappings struct {
	kv jetstream.KeyValue
	nc *nats.Conn // for the server's max_payload in errors; may be nil

	js       jetstream.JetStream // for signed writes; nil for a read-only binding
	signer   *betasync.Signer    // nil: versions are stored unsigned
	verifier *betasync.Verifier  // nil: stored versions are not verified
}

// WithVerifier returns m reading through v: a stored version v rejects is
// reported as corrupt.
func (m *Mappings) WithVerifier(v *betasync.Verifier) *Mappings {
	c := *m
	c.verifier = v
	return &c
}

// Latest returns the current version, validated, with Version set to its
// revision. With none stored it returns an ENOTFOUND error. When the stored
// entry is not a valid envelope it returns a *CorruptError (ErrCorrupt).
func (m *Mappings) Latest(ctx context.Context) (*betasync.Snapshot, error) {
	return retry(ctx, m.latest)
}

func (m *Mappings) latest(ctx context.Context) (*betasync.Snapshot, error) {
	e, err := m.kv.Get(ctx, KeyMapping)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, betasync.Errorf(betasync.ENOTFOUND, "no mapping is stored yet")
		}
		return nil, fmt.Errorf("kv: reading the mapping: %w", err)
	}
	return decodeSnapshot(e, m.verifier)
}

// History returns the stored versions, oldest first. Entries that are not
// valid envelopes (see ErrCorrupt) are left out: they can never be restored.
func (m *Mappings) History(ctx context.Context) ([]*betasync.Snapshot, error) {
	return retry(ctx, m.history)
}

func (m *Mappings) history(ctx context.Context) ([]*betasync.Snapshot, error) {
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
		snap, err := decodeSnapshot(e, m.verifier)
		if err != nil {
			continue
		}
		out = append(out, snap)
	}
	return out, nil
}

// Put stores snap as a new version if the current revision is still
// expected (0: nothing stored yet), and sets snap.Version to the new
// version. A lost race is an ECONFLICT error and writes nothing. An
// envelope larger than the NATS server's max_payload is an EUPSTREAM error:
// the source sent a document too big for this deployment. The stored
// envelope leaves out the version: the revision is the version.
//
// With a Signer, the version is signed before it is written, under the
// number it will get: the stream's last sequence plus one, made certain by
// writing with that sequence expected (any other write in between makes
// this one fail as a lost race).
func (m *Mappings) Put(ctx context.Context, snap *betasync.Snapshot, expected uint64) (uint64, error) {
	attempts := 0
	return retry(ctx, func(ctx context.Context) (uint64, error) {
		attempts++
		rev, err := m.put(ctx, snap, expected)
		if attempts > 1 && betasync.ErrorCode(err) == betasync.ECONFLICT {
			// An earlier attempt may have been stored with its answer
			// lost (a leader election): then the "race" was lost to
			// ourselves.
			if rev, ok := m.landed(ctx, snap, expected); ok {
				return rev, nil
			}
		}
		return rev, err
	})
}

// landed reports whether the version stored after expected is snap itself
// (same document, source, actor and fetch time), written by an attempt whose
// answer was lost; if so it sets snap's version and signature from it.
func (m *Mappings) landed(ctx context.Context, snap *betasync.Snapshot, expected uint64) (uint64, bool) {
	stored, err := m.latest(ctx)
	if err != nil || stored.Version <= expected || !stored.SameContent(snap) ||
		!stored.FetchedAt.Equal(snap.FetchedAt) || stored.Source != snap.Source || stored.Actor != snap.Actor {
		return 0, false
	}
	snap.Version, snap.Signer, snap.Signature = stored.Version, stored.Signer, stored.Signature
	return stored.Version, true
}

func (m *Mappings) put(ctx context.Context, snap *betasync.Snapshot, expected uint64) (uint64, error) {
	if m.signer != nil {
		return m.putSigned(ctx, snap, expected)
	}
	snap.Signer, snap.Signature = "", "" // a signature copied from another version would not match
	data, err := storedForm(snap)
	if err != nil {
		return 0, err
	}
	var rev uint64
	if expected == 0 {
		rev, err = m.kv.Create(ctx, KeyMapping, data)
	} else {
		rev, err = m.kv.Update(ctx, KeyMapping, data, expected)
	}
	if err = m.putErr(err, len(data)); err != nil {
		return 0, err
	}
	snap.Version = rev
	return rev, nil
}

func (m *Mappings) putSigned(ctx context.Context, snap *betasync.Snapshot, expected uint64) (uint64, error) {
	bucket := m.kv.Bucket()
	stream, err := m.js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return 0, fmt.Errorf("kv: the mapping stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("kv: the mapping stream: %w", err)
	}
	last := info.State.LastSeq
	// The key must still be at the expected revision (0: no live value).
	e, err := m.kv.Get(ctx, KeyMapping)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if expected != 0 {
			return 0, conflict()
		}
	case err != nil:
		return 0, fmt.Errorf("kv: reading the mapping: %w", err)
	case e.Revision() != expected:
		return 0, conflict()
	}
	signed := *snap
	signed.Version = last + 1
	if err := m.signer.Sign(&signed); err != nil {
		return 0, err
	}
	data, err := storedForm(&signed)
	if err != nil {
		return 0, err
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequence(last)}
	if expected != 0 {
		// The server checks the key's revision too: the Get above may
		// have been answered by a follower.
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(expected))
	}
	ack, err := m.js.PublishMsg(ctx, &nats.Msg{Subject: "$KV." + bucket + "." + KeyMapping, Data: data}, opts...)
	if err = m.putErr(err, len(data)); err != nil {
		return 0, err
	}
	if ack.Sequence != signed.Version {
		return 0, fmt.Errorf("kv: stored as revision %d, signed as %d", ack.Sequence, signed.Version)
	}
	*snap = signed
	return signed.Version, nil
}

// storedForm is snap's envelope without its version.
func storedForm(snap *betasync.Snapshot) ([]byte, error) {
	stored := *snap
	stored.Version = 0
	data, err := stored.MarshalJSON() // not json.Marshal, which would scan it once more
	if err != nil {
		return nil, fmt.Errorf("kv: encoding the mapping: %w", err)
	}
	return data, nil
}

func conflict() error {
	return betasync.Errorf(betasync.ECONFLICT, "another writer stored a mapping version first")
}

// putErr names a failed write of size bytes: a lost race, a document too
// big for the server, or anything else.
func (m *Mappings) putErr(err error, size int) error {
	if isConflict(err) {
		return conflict()
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		limit := "the NATS server's max_payload"
		if m.nc != nil {
			limit = fmt.Sprintf("the NATS server's max_payload (%d bytes)", m.nc.MaxPayload())
		}
		return betasync.Errorf(betasync.EUPSTREAM, "the mapping envelope is %d bytes, more than %s; raise max_payload", size, limit)
	}
	if err != nil {
		return fmt.Errorf("kv: storing the mapping: %w", err)
	}
	return nil
}

// decodeSnapshot decodes and validates a stored envelope, and verifies its
// signature when v is set.
func decodeSnapshot(e jetstream.KeyValueEntry, v *betasync.Verifier) (*betasync.Snapshot, error) {
	snap := new(betasync.Snapshot)
	if err := snap.UnmarshalJSON(e.Value()); err != nil { // not json.Unmarshal, which would scan it once more first
		return nil, &CorruptError{Revision: e.Revision(), Reason: betasync.ErrorMessage(err)}
	}
	snap.Version = e.Revision()
	if v != nil {
		if err := v.Verify(snap); err != nil {
			return nil, &CorruptError{Revision: e.Revision(), Reason: betasync.ErrorMessage(err)}
		}
	}
	return snap, nil
}

func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	// A write with an expected stream sequence (a signed version) that
	// lost: 10071, or 10164 on a replicated stream.
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Schedules stores the shared schedule.
type Schedules struct{ kv jetstream.KeyValue }

// Get returns the schedule and its revision; a zero Schedule and revision 0
// when none is stored.
func (s *Schedules) Get(ctx context.Context) (Schedule, uint64, error) {
	type got struct {
		sch Schedule
		rev uint64
	}
	g, err := retry(ctx, func(ctx context.Context) (got, error) {
		sch, rev, err := s.get(ctx)
		return got{sch, rev}, err
	})
	return g.sch, g.rev, err
}

func (s *Schedules) get(ctx context.Context) (Schedule, uint64, error) {
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
		err = writeOnce(ctx, s.kv, KeySchedule, data, rev)
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
	return retry(ctx, l.holder)
}

func (l *Lease) holder(ctx context.Context) (string, error) {
	e, err := l.kv.Get(ctx, KeyLease)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("kv: reading the lease: %w", err)
	}
	return string(e.Value()), nil
}

// Check reports whether the buckets can serve the commands now: each
// bucket's stream answers an info request, which only its leader does, so
// a cluster that is still electing leaders after a restart is not ready
// even though its servers accept connections.
func Check(ctx context.Context, js jetstream.JetStream) error {
	for _, bucket := range []string{BucketConfig, BucketState, BucketLock} {
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err == nil {
			_, err = s.Info(ctx)
		}
		if err != nil {
			return betasync.Errorf(betasync.EUNAVAILABLE, "KV bucket %s is not available: %v", bucket, err)
		}
	}
	return nil
}

// Open binds to the buckets without creating or updating them, for a
// replica that only reads (an API replica answering the status when no
// worker does). A bucket that does not exist yet is ENOTFOUND.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	open := func(bucket string) (jetstream.KeyValue, error) {
		b, err := js.KeyValue(ctx, bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, betasync.Errorf(betasync.ENOTFOUND, "bucket %s does not exist yet: no worker has started", bucket)
		}
		if err != nil {
			return nil, fmt.Errorf("kv: bucket %s: %w", bucket, err)
		}
		return b, nil
	}
	config, err := open(BucketConfig)
	if err != nil {
		return nil, err
	}
	state, err := open(BucketState)
	if err != nil {
		return nil, err
	}
	lock, err := open(BucketLock)
	if err != nil {
		return nil, err
	}
	return &Store{
		Mappings:  &Mappings{kv: config, nc: js.Conn()},
		Schedules: &Schedules{kv: state},
		Lease:     &Lease{kv: lock},
		Overrides: &OverrideStore{kv: state},
	}, nil
}

// Transient JetStream failures, and riding them out. While a stream's
// leader is being elected (a node of a cluster lost, or a whole cluster
// restarting), requests fail for a few seconds with "no response from
// stream", no responders, timeouts or "temporarily unavailable"; the
// commands must cost latency then, not fail. So every bucket operation a
// command makes is retried, with a short per-attempt deadline and backoff,
// until it succeeds, fails for another reason, or the command's own
// deadline ends. (The lease's calls are not: the worker bounds those to
// keep the lease's timing.)
const (
	attemptTimeout = 2 * time.Second
	retryFirst     = 50 * time.Millisecond
	retryMax       = time.Second
	retryFor       = 15 * time.Second // a leader election takes a few seconds
)

// Transient reports an error that a new stream leader, or a moment, fixes.
func Transient(err error) bool {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.Code == 503 || api.ErrorCode == 10008 || api.ErrorCode == 10009 || api.ErrorCode == 10118)
}

// retry runs op until it succeeds, fails for good, or ctx ends; without a
// deadline on ctx, it gives up after retryFor.
func retry[T any](ctx context.Context, op func(ctx context.Context) (T, error)) (T, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, retryFor)
		defer cancel()
	}
	wait := retryFirst
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		v, err := op(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !Transient(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// writeOnce writes data under key by compare-and-swap on rev (0: create),
// retrying transient failures. A retry that loses the race to an earlier
// attempt of its own (stored, but its answer lost) is a success: fn-style
// updates must not be applied twice.
func writeOnce(ctx context.Context, b jetstream.KeyValue, key string, data []byte, rev uint64) error {
	attempts := 0
	_, err := retry(ctx, func(ctx context.Context) (uint64, error) {
		attempts++
		var next uint64
		var err error
		if rev == 0 {
			next, err = b.Create(ctx, key, data)
		} else {
			next, err = b.Update(ctx, key, data, rev)
		}
		if attempts > 1 && isConflict(err) {
			if e, gerr := b.Get(ctx, key); gerr == nil && e.Revision() > rev && bytes.Equal(e.Value(), data) {
				return e.Revision(), nil
			}
		}
		return next, err
	})
	return err
}
