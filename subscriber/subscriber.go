// Package subscriber is what every pod of a Go LLM proxy embeds: it keeps
// the current anthropic-beta mapping in memory and swaps it the moment a new
// version is announced on NATS.
//
// A Subscriber serves the embedded default from the first instant, then the
// latest version stored in JetStream KV, then every config.updated event
// whose version is newer than the one it holds and whose document
// validates. Stale, duplicate and invalid events are logged, counted and
// ignored. On every reconnect, on a jittered safety interval, and when the
// worker's beacon (config.current) names another version than the one it
// holds, it re-reads KV, so a pod that missed events converges without
// waiting for the next one.
//
// Lookups go through Current, an atomic pointer load: no locks, and with the
// caller-buffer form (Mapping.AppendBetas) no allocations.
//
// The Subscriber uses the caller's *nats.Conn and never dials, drains or
// closes it.
package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/ratelog"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
)

// Stats counts what the subscriber did with the versions it saw.
type Stats struct {
	Applied uint64 // versions swapped in
	Stale   uint64 // events at or below the current version
	Invalid uint64 // events that did not decode or validate
	Resyncs uint64 // KV re-reads
	// Corrected counts going back to KV's version from one that KV does not
	// hold (a forged event, or buckets recreated).
	Corrected uint64
}

// Option configures a Subscriber.
type Option func(*Subscriber)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Subscriber) { s.log = l } }

// WithSubject sets the event subject; the default is config.updated.
func WithSubject(subject string) Option { return func(s *Subscriber) { s.subject = subject } }

// WithBeaconSubject sets the beacon subject, where the lease-holding worker
// names the stored version every check interval; the default is
// config.current, and "" turns beacons off (the pod then notices a missed
// announcement only at its next resync).
func WithBeaconSubject(subject string) Option {
	return func(s *Subscriber) { s.beaconSubject = subject }
}

// WithBucket sets the KV bucket holding the mapping; default betasync_config.
func WithBucket(bucket string) Option { return func(s *Subscriber) { s.bucket = bucket } }

// WithResyncInterval sets the safety interval between KV re-reads (jittered
// by up to ±20%); the default is 30s, and 0 keeps it.
func WithResyncInterval(d time.Duration) Option {
	return func(s *Subscriber) {
		if d > 0 {
			s.resync = d
		}
	}
}

// WithOnUpdate calls fn on the subscriber's goroutine after each swap, with
// the version now served. fn must not block for long, and must not call
// Close (Close waits for that goroutine).
func WithOnUpdate(fn func(*betasync.Snapshot)) Option { return func(s *Subscriber) { s.onUpdate = fn } }

// WithVerifier applies only versions signed by a key v trusts, from events
// and from KV alike (see betasync.Signer); others are rejected like invalid
// ones. Without it, any version that validates is applied: then anyone who
// may publish on config.updated can make pods serve a mapping of their
// choosing until the next resync (see the README).
func WithVerifier(v *betasync.Verifier) Option { return func(s *Subscriber) { s.verifier = v } }

// WithJetStreamDomain reads KV through the JetStream domain named domain:
// for a pod connected to a leaf node (a region) whose server has no
// JetStream of its own, with the buckets on the hub's domain.
func WithJetStreamDomain(domain string) Option { return func(s *Subscriber) { s.jsDomain = domain } }

// withConfirmDelay sets the wait before reading again after a lagging
// replica answered (tests).
func withConfirmDelay(d time.Duration) Option { return func(s *Subscriber) { s.confirmDelay = d } }

// WithFallback serves m instead of the embedded default until a version
// arrives from the bus.
func WithFallback(m *betasync.Mapping) Option { return func(s *Subscriber) { s.fallback = m } }

// Subscriber holds the current mapping. Its methods are safe for concurrent
// use.
type Subscriber struct {
	nc            *nats.Conn
	log           *slog.Logger
	subject       string
	beaconSubject string
	bucket        string
	// jsDomain is the JetStream domain holding the buckets ("": local).
	jsDomain string
	resync   time.Duration
	// confirmDelay is the wait before reading again after a replica that
	// lags answered.
	confirmDelay time.Duration
	onUpdate     func(*betasync.Snapshot)
	verifier     *betasync.Verifier // nil: versions are not verified
	fallback     *betasync.Mapping

	cur     atomic.Pointer[betasync.Snapshot]
	swapped atomic.Pointer[chan struct{}] // closed, and replaced, at every swap
	ready   chan struct{}                 // closed once a bus-delivered version is applied

	applied, stale, invalid, resyncs, corrected atomic.Uint64
	rejectLog                                   ratelog.Limiter

	// The fleet view (fleet.go).
	podID    string
	noFleet  bool
	rejected atomic.Pointer[betasync.Rejection] // the last version refused
	svc      micro.Service                      // the betasync_pod service; nil WithoutFleet

	events    chan []byte
	beacons   chan publisher.Beacon
	offers    chan offer
	statuses  chan nats.Status
	sub       *nats.Subscription
	beaconSub *nats.Subscription // nil without beacons
	cancel    context.CancelFunc
	done      chan struct{}
	close     sync.Once
}

// New subscribes to announcements on nc and starts the goroutine that
// applies them. The embedded default (or WithFallback's mapping) is served
// until the first version arrives from KV or an event. Stop it with Close.
func New(nc *nats.Conn, opts ...Option) (*Subscriber, error) {
	s := &Subscriber{
		nc:            nc,
		log:           slog.New(slog.DiscardHandler),
		subject:       publisher.SubjectConfigUpdated,
		beaconSubject: publisher.SubjectConfigCurrent,
		bucket:        kv.BucketConfig,
		resync:        30 * time.Second,
		confirmDelay:  500 * time.Millisecond,
		rejectLog:     ratelog.Limiter{Burst: 10, Every: time.Minute},
		fallback:      betasync.Default(),
		ready:         make(chan struct{}),
		events:        make(chan []byte, 64),
		beacons:       make(chan publisher.Beacon, 1),
		offers:        make(chan offer),
		done:          make(chan struct{}),
	}
	s.podID = defaultPodID() // fleet.go
	for _, o := range opts {
		o(s)
	}
	s.cur.Store(&betasync.Snapshot{Mapping: s.fallback, Source: betasync.SourceEmbedded, AppliedAt: time.Now().UTC()})
	first := make(chan struct{})
	s.swapped.Store(&first)

	// An async subscription, not a channel one: while the loop is busy,
	// events queue in the client's pending buffer (512Ki messages, 64 MiB)
	// instead of overflowing a small channel and being dropped unseen.
	sub, err := nc.Subscribe(s.subject, func(msg *nats.Msg) {
		if len(msg.Data) > MaxEventSize {
			// Dropped before decoding: a flood of huge events must not
			// cost memory. A real version this big is read from KV.
			s.invalid.Add(1)
			err := betasync.Errorf(betasync.EINVALID, "event of %d bytes is over the %d-byte limit", len(msg.Data), MaxEventSize)
			s.reject(0, "event", err)
			s.warnRejected("ignoring an oversized config.updated event", "bytes", len(msg.Data), "limit", MaxEventSize)
			return
		}
		select {
		case s.events <- msg.Data:
		case <-s.done:
		}
	})
	if err != nil {
		return nil, err
	}
	s.sub = sub
	if s.beaconSubject != "" {
		if s.beaconSub, err = nc.Subscribe(s.beaconSubject, s.onBeacon); err != nil {
			_ = sub.Unsubscribe()
			return nil, err
		}
	}
	if err := s.startFleet(); err != nil {
		_ = sub.Unsubscribe()
		if s.beaconSub != nil {
			_ = s.beaconSub.Unsubscribe()
		}
		return nil, err
	}
	s.statuses = nc.StatusChanged(nats.CONNECTED)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(ctx)
	return s, nil
}

// WaitVersion waits until the version in use is at least v, or ctx ends.
// A replica that has just answered "stored version v" uses it so that its
// next read shows v (read-your-writes).
func (s *Subscriber) WaitVersion(ctx context.Context, v uint64) error {
	for {
		ch := *s.swapped.Load()
		if s.cur.Load().Version >= v {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Current returns the version in use. It is never nil; treat it as
// read-only.
func (s *Subscriber) Current() *betasync.Snapshot { return s.cur.Load() }

// offer is a version handed over in-process, and the signal that it was
// handled.
type offer struct {
	snap *betasync.Snapshot
	done chan struct{}
}

// Offer hands the subscriber a version that this process has just stored
// (the daemon's worker does), so that it is served without waiting for its
// own announcement, and without decoding and validating it a second time.
// It is applied like any other version (only if newer), and Offer returns
// once it has been, or once the subscriber is closed.
func (s *Subscriber) Offer(snap *betasync.Snapshot) {
	o := offer{snap: snap, done: make(chan struct{})}
	select {
	case s.offers <- o:
		<-o.done
	case <-s.done:
	}
}

// Ready reports whether a version delivered over the bus (from KV or an
// event) is in use, not only the fallback.
func (s *Subscriber) Ready() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// WaitReady waits until Ready or ctx ends.
func (s *Subscriber) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the counters.
func (s *Subscriber) Stats() Stats {
	return Stats{
		Applied: s.applied.Load(), Stale: s.stale.Load(), Invalid: s.invalid.Load(),
		Resyncs: s.resyncs.Load(), Corrected: s.corrected.Load(),
	}
}

// Close stops the goroutine and unsubscribes; once it returns, no swap
// happens, OnUpdate is not called, and the pod has left the fleet view
// (the betasync_pod service is stopped). It does not close the connection.
// Calling it more than once is safe.
func (s *Subscriber) Close() {
	s.close.Do(func() {
		s.stopFleet()
		s.cancel()
		<-s.done
		_ = s.sub.Unsubscribe()
		if s.beaconSub != nil {
			_ = s.beaconSub.Unsubscribe()
		}
		s.nc.RemoveStatusListener(s.statuses)
	})
}

// loop owns every swap: events, reconnects and the safety interval all
// arrive here, so versions are applied in one place, in order. KV is read
// on another goroutine, one read at a time, so a slow or failing read never
// holds up events.
//
// KV is the authority. A read that returns the version in use confirms it;
// a newer one is applied. The same version with other content means the
// version in use is not what KV holds (a forged event): the subscriber goes
// back to KV's (a revision's content never changes). An older one is
// checked against the stream's last revision, which only its leader
// answers: below the version in use, KV never held it (a forged event, or
// buckets deleted and recreated), and the subscriber goes back at once;
// otherwise the read came from a replica that lags, and it reads again a
// moment later (going back only if that persists for lagReads reads, which
// only a deleted key can cause).
func (s *Subscriber) loop(ctx context.Context) {
	defer close(s.done)
	type read struct {
		snap *betasync.Snapshot
		last uint64             // the stream's last revision, from its leader; 0 when unknown
		held *betasync.Snapshot // the version in use when the read began
	}
	const lagReads = 20
	var (
		reads   sync.WaitGroup
		results = make(chan read)
		reading bool // a KV read is in flight
		again   bool // another read was asked for meanwhile
		lagging int  // reads in a row that returned less than the version in use, which KV has reached
	)
	defer reads.Wait()
	resync := func() {
		if reading {
			again = true
			return
		}
		reading = true
		s.resyncs.Add(1)
		held, delay := s.cur.Load(), time.Duration(0)
		if lagging > 0 {
			delay = s.confirmDelay
		}
		reads.Go(func() {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			r := read{snap: s.readKV(ctx), held: held}
			if r.snap != nil && r.snap.Version < held.Version {
				r.last = s.lastRevision(ctx)
			}
			select {
			case results <- r:
			case <-ctx.Done():
			}
		})
	}

	statuses := s.statuses
	var (
		lastBeaconRead time.Time
		beaconWait     <-chan time.Time // a read a beacon asked for, held back by the one-a-second limit
	)
	resync()
	timer := time.NewTimer(s.jitter())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case data := <-s.events:
			s.applyEvent(data)
		case o := <-s.offers:
			s.apply(o.snap, "worker")
			close(o.done)
		case _, ok := <-statuses:
			if !ok { // the connection was closed
				statuses = nil
				continue
			}
			s.log.Info("reconnected to NATS; re-reading the mapping from KV")
			resync()
		case <-timer.C:
			resync()
			timer.Reset(s.jitter())
		case b := <-s.beacons:
			// A beacon that names another version than the one in use
			// means an announcement was missed (or the version in use is
			// not KV's): read KV now, or, within a second of the last
			// read a beacon caused, a second after it, so that a flood of
			// forged beacons costs at most one read a second.
			cur := s.cur.Load()
			if (b.Version == cur.Version && b.Hash == cur.Hash()) || beaconWait != nil {
				continue
			}
			s.log.Debug("the beacon names another version; reading KV", "beacon_version", b.Version, "version", cur.Version)
			if wait := time.Second - time.Since(lastBeaconRead); wait > 0 {
				beaconWait = time.After(wait)
				continue
			}
			lastBeaconRead = time.Now()
			resync()
		case <-beaconWait:
			beaconWait = nil
			lastBeaconRead = time.Now()
			resync()
		case r := <-results:
			reading = false
			cur := s.cur.Load()
			switch {
			case r.snap == nil: // nothing stored, or KV unreadable: keep what is in use
			case r.snap.Version > cur.Version:
				lagging = 0
				s.apply(r.snap, "kv")
			case r.snap.Version == cur.Version && r.snap.Hash() == cur.Hash():
				lagging = 0
				s.confirm(cur)
			case cur != r.held:
				again = true // a version was applied while reading: read again
			case r.snap.Version == cur.Version, r.last != 0 && r.last < cur.Version, lagging >= lagReads:
				lagging = 0
				s.replace(r.snap, cur)
			default: // a lagging replica answered: read again in a moment
				lagging++
				again = true
			}
			if again {
				again = false
				resync()
			}
		}
	}
}

// replace goes back from cur, which KV does not hold, to snap, which it does.
func (s *Subscriber) replace(snap, cur *betasync.Snapshot) {
	s.log.Warn("the version in use is not the one stored in KV; going back to KV's",
		"version", cur.Version, "hash", cur.Hash(), "kv_version", snap.Version, "kv_hash", snap.Hash())
	s.corrected.Add(1)
	s.reject(cur.Version, "resync", betasync.Errorf(betasync.EINVALID,
		"version %d (hash %s) is not the one stored in KV (version %d, hash %s); replaced by KV's", cur.Version, cur.Hash(), snap.Version, snap.Hash()))
	s.swap(snap, cur, "kv")
}

func (s *Subscriber) jitter() time.Duration {
	return time.Duration(float64(s.resync) * (0.8 + 0.4*rand.Float64()))
}

// readKV returns the latest stored version, retrying briefly while
// JetStream recovers after a reconnect. It returns nil when reading failed
// or nothing is stored yet; the latter is an answer, not a failure, and is
// not retried.
func (s *Subscriber) readKV(ctx context.Context) *betasync.Snapshot {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		snap, err := s.latest(ctx)
		switch {
		case err == nil:
			return snap
		case ctx.Err() != nil:
			return nil
		case betasync.ErrorCode(err) == betasync.ENOTFOUND:
			s.log.Debug("no mapping in KV yet; keeping the current one", "reason", betasync.ErrorMessage(err))
			return nil
		case errors.Is(err, kv.ErrCorrupt):
			s.invalid.Add(1)
			// The version a stored entry claims is its revision, known
			// even when its content is not valid.
			var rev uint64
			if ce, ok := errors.AsType[*kv.CorruptError](err); ok {
				rev = ce.Revision
			}
			s.reject(rev, "kv", err)
			s.log.Warn("the stored mapping is not valid; keeping the current one", "err", err)
			return nil
		case attempt == 8:
			s.log.Warn("reading the mapping from KV failed; keeping the current one", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// maxBeaconSize bounds a beacon: {"version":N,"hash":"sha256:..."} is
// under 100 bytes.
const maxBeaconSize = 256

// onBeacon hands a beacon to the loop. Beacons that do not decode are
// ignored (they carry no version to apply), and while the loop has one
// waiting, later ones are dropped: the next names the same version.
func (s *Subscriber) onBeacon(msg *nats.Msg) {
	var b publisher.Beacon
	if len(msg.Data) > maxBeaconSize || json.Unmarshal(msg.Data, &b) != nil {
		return
	}
	select {
	case s.beacons <- b:
	default:
	}
}

// lastRevision returns the mapping stream's last revision, from its
// leader; 0 when it cannot be read.
func (s *Subscriber) lastRevision(ctx context.Context) uint64 {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	store, err := s.mappings(rctx)
	if err != nil {
		return 0
	}
	last, err := store.LastRevision(rctx)
	if err != nil {
		return 0
	}
	return last
}

// latest reads the stored version once.
func (s *Subscriber) latest(ctx context.Context) (*betasync.Snapshot, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	store, err := s.mappings(rctx)
	if err != nil {
		return nil, err
	}
	return store.WithVerifier(s.verifier).Latest(rctx)
}

// mappings binds to the mapping bucket (through the JetStream domain, if
// one is set).
func (s *Subscriber) mappings(ctx context.Context) (*kv.Mappings, error) {
	js, err := jetstream.New(s.nc)
	if s.jsDomain != "" {
		js, err = jetstream.NewWithDomain(s.nc, s.jsDomain)
	}
	if err != nil {
		return nil, err
	}
	return kv.OpenMappings(ctx, js, s.bucket)
}

// applyEvent decodes an announced version, unless it is not newer than the
// one in use: a stale or duplicate event costs no validation.
func (s *Subscriber) applyEvent(data []byte) {
	v, err := betasync.PeekVersion(data)
	if err != nil {
		s.invalid.Add(1)
		s.reject(0, "event", err)
		s.warnRejected("ignoring an undecodable config.updated event", "err", err)
		return
	}
	cur := s.cur.Load()
	if v <= cur.Version {
		s.stale.Add(1)
		s.log.Debug("ignoring a stale or duplicate version", "version", v, "current", cur.Version)
		s.confirm(cur)
		return
	}
	snap := new(betasync.Snapshot)
	// UnmarshalJSON's decode and checks (not json.Unmarshal, which would
	// scan it once more first), sharing the sections that did not change
	// since the version in use.
	err = snap.DecodeOwnedAfter(data, cur.Mapping)
	if err == nil && s.verifier != nil {
		err = s.verifier.Verify(snap)
	}
	if err != nil {
		s.invalid.Add(1)
		s.reject(v, "event", err)
		s.warnRejected("ignoring an invalid mapping version; keeping the current one", "version", v, "via", "event", "err", betasync.ErrorMessage(err))
		return
	}
	s.apply(snap, "event")
}

// apply swaps to snap if it is newer than the current version. snap is
// valid (decoded and checked, or built by this process).
func (s *Subscriber) apply(snap *betasync.Snapshot, via string) {
	cur := s.cur.Load()
	if snap.Version <= cur.Version {
		s.confirm(cur)
		return
	}
	s.swap(snap, cur, via)
}

// swap makes snap the version in use.
func (s *Subscriber) swap(snap, cur *betasync.Snapshot, via string) {
	next := *snap
	next.AppliedAt = time.Now().UTC()
	s.cur.Store(&next)
	fresh := make(chan struct{})
	close(*s.swapped.Swap(&fresh))
	s.applied.Add(1)
	s.markReady(true)
	s.log.Info("applied mapping version", "version", next.Version, "previous", cur.Version, "source", next.Source, "via", via)
	if s.onUpdate != nil {
		s.onUpdate(&next)
	}
}

// confirm marks the subscriber ready when the version in use came from the
// bus and the bus has just confirmed it.
func (s *Subscriber) confirm(cur *betasync.Snapshot) {
	if s.markReady(cur.Version > 0) {
		s.log.Info("mapping confirmed from the bus", "version", cur.Version)
	}
}

// MaxEventSize is the largest config.updated event a subscriber decodes:
// room for a document at the 1 MiB cap (betasync.MaxConfigSize) and its
// envelope. Larger events are dropped unread and counted as invalid; a
// real version that large still arrives, from KV, at the next resync.
const MaxEventSize = 2 * betasync.MaxConfigSize

// warnRejected logs a rejected event at WARN, at most 10 lines a minute: a
// flood of bad events is counted in Stats, not written out one by one.
func (s *Subscriber) warnRejected(msg string, args ...any) {
	v := s.rejectLog.Allow(time.Now())
	if v.Dropped > 0 {
		s.log.Warn("rejected config.updated events not logged", "count", v.Dropped, "since", v.Since.UTC().Format(time.RFC3339))
	}
	if v.OK {
		if v.Last {
			args = append(args, "note", "limit reached: further rejected events this minute are counted, not logged")
		}
		s.log.Warn(msg, args...) //nolint:sloglint // one of three constant messages, passed through
	}
}

// markReady closes ready once; it reports whether this call did.
func (s *Subscriber) markReady(ok bool) bool {
	if !ok || s.Ready() {
		return false
	}
	close(s.ready)
	return true
}
