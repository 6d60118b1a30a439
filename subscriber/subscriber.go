// Package subscriber is what every pod of a Go LLM proxy embeds: it keeps
// the current anthropic-beta mapping in memory and swaps it the moment a new
// version is announced on NATS.
//
// A Subscriber serves the embedded default from the first instant, then the
// latest version stored in JetStream KV, then every config.updated event
// whose version is newer than the one it holds and whose document
// validates. Stale, duplicate and invalid events are logged, counted and
// ignored. On every reconnect, and on a jittered safety interval, it re-reads
// KV, so a pod that missed events converges without waiting for the next one.
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
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/kv"
)

// Snapshot is one applied mapping version, with the mapping's methods
// (Hash, AppendBetas, ...) promoted. It is immutable.
type Snapshot struct {
	*betasync.Mapping
	Version   uint64    // KV revision; 0 for the embedded default
	Source    string    // "embedded", "remote", "local", ...
	FetchedAt time.Time // when the worker loaded it; zero for the embedded default
	URL       string
	ETag      string
	AppliedAt time.Time // when this pod swapped to it
}

// Stats counts what the subscriber did with the versions it saw.
type Stats struct {
	Applied uint64 // versions swapped in
	Stale   uint64 // events at or below the current version
	Invalid uint64 // events that did not decode or validate
	Resyncs uint64 // KV re-reads
}

// Option configures a Subscriber.
type Option func(*Subscriber)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Subscriber) { s.log = l } }

// WithSubject sets the event subject; the default is config.updated.
func WithSubject(subject string) Option { return func(s *Subscriber) { s.subject = subject } }

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

// WithOnUpdate calls fn on the subscriber's goroutine after each swap. fn
// must not block for long, and must not call Close (Close waits for that
// goroutine).
func WithOnUpdate(fn func(Snapshot)) Option { return func(s *Subscriber) { s.onUpdate = fn } }

// WithFallback serves m instead of the embedded default until a version
// arrives from the bus.
func WithFallback(m *betasync.Mapping) Option { return func(s *Subscriber) { s.fallback = m } }

// Subscriber holds the current mapping. Its methods are safe for concurrent
// use.
type Subscriber struct {
	nc       *nats.Conn
	log      *slog.Logger
	subject  string
	bucket   string
	resync   time.Duration
	onUpdate func(Snapshot)
	fallback *betasync.Mapping

	cur   atomic.Pointer[Snapshot]
	ready chan struct{} // closed once a bus-delivered version is applied

	applied, stale, invalid, resyncs atomic.Uint64

	events   chan []byte
	statuses chan nats.Status
	sub      *nats.Subscription
	cancel   context.CancelFunc
	done     chan struct{}
	close    sync.Once
}

// New subscribes to announcements on nc and starts the goroutine that
// applies them. The embedded default (or WithFallback's mapping) is served
// until the first version arrives from KV or an event. Stop it with Close.
func New(nc *nats.Conn, opts ...Option) (*Subscriber, error) {
	s := &Subscriber{
		nc:       nc,
		log:      slog.New(slog.DiscardHandler),
		subject:  betasync.SubjectConfigUpdated,
		bucket:   betasync.BucketConfig,
		resync:   30 * time.Second,
		fallback: betasync.Default(),
		ready:    make(chan struct{}),
		events:   make(chan []byte, 64),
		done:     make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	m := s.fallback
	s.cur.Store(&Snapshot{Mapping: m, Source: betasync.SourceEmbedded, AppliedAt: time.Now().UTC()})

	// An async subscription, not a channel one: while the loop is busy,
	// events queue in the client's pending buffer (512Ki messages, 64 MiB)
	// instead of overflowing a small channel and being dropped unseen.
	sub, err := nc.Subscribe(s.subject, func(msg *nats.Msg) {
		select {
		case s.events <- msg.Data:
		case <-s.done:
		}
	})
	if err != nil {
		return nil, err
	}
	s.sub = sub
	s.statuses = nc.StatusChanged(nats.CONNECTED)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(ctx)
	return s, nil
}

// Current returns the mapping in use. It is never nil.
func (s *Subscriber) Current() *Snapshot { return s.cur.Load() }

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
	return Stats{Applied: s.applied.Load(), Stale: s.stale.Load(), Invalid: s.invalid.Load(), Resyncs: s.resyncs.Load()}
}

// Close stops the goroutine and unsubscribes; once it returns, no swap
// happens and OnUpdate is not called. It does not touch the connection.
// Calling it more than once is safe.
func (s *Subscriber) Close() {
	s.close.Do(func() {
		s.cancel()
		<-s.done
		_ = s.sub.Unsubscribe()
		s.nc.RemoveStatusListener(s.statuses)
	})
}

// loop owns every swap: events, reconnects and the safety interval all
// arrive here, so versions are applied in one place, in order. KV is read
// on another goroutine, one read at a time, so a slow or failing read never
// holds up events.
func (s *Subscriber) loop(ctx context.Context) {
	defer close(s.done)
	var (
		reads   sync.WaitGroup
		results = make(chan betasync.Envelope)
		reading bool // a KV read is in flight
		again   bool // another read was asked for meanwhile
	)
	defer reads.Wait()
	resync := func() {
		if reading {
			again = true
			return
		}
		reading = true
		s.resyncs.Add(1)
		reads.Go(func() {
			env, ok := s.readKV(ctx)
			if !ok {
				env = betasync.Envelope{} // version 0: nothing to apply
			}
			select {
			case results <- env:
			case <-ctx.Done():
			}
		})
	}

	statuses := s.statuses
	resync()
	timer := time.NewTimer(s.jitter())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case data := <-s.events:
			s.applyEvent(data)
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
		case env := <-results:
			reading = false
			if env.Version > 0 {
				s.apply(env, "kv")
			}
			if again {
				again = false
				resync()
			}
		}
	}
}

func (s *Subscriber) jitter() time.Duration {
	return time.Duration(float64(s.resync) * (0.8 + 0.4*rand.Float64()))
}

// readKV returns the latest stored version, retrying briefly while
// JetStream recovers after a reconnect. ok is false when reading failed or
// nothing is stored yet; the latter is an answer, not a failure, and is not
// retried.
func (s *Subscriber) readKV(ctx context.Context) (betasync.Envelope, bool) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		env, err := s.latest(ctx)
		switch {
		case err == nil:
			return env, true
		case ctx.Err() != nil:
			return env, false
		case betasync.ErrorCode(err) == betasync.ENOTFOUND:
			s.log.Debug("no mapping in KV yet; keeping the current one", "reason", betasync.ErrorMessage(err))
			return env, false
		case attempt == 8:
			s.log.Warn("reading the mapping from KV failed; keeping the current one", "err", err)
			return env, false
		}
		select {
		case <-ctx.Done():
			return env, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// latest reads the stored version once.
func (s *Subscriber) latest(ctx context.Context) (betasync.Envelope, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return betasync.Envelope{}, err
	}
	store, err := kv.OpenMappings(rctx, js, s.bucket)
	if err != nil {
		return betasync.Envelope{}, err
	}
	return store.Latest(rctx)
}

func (s *Subscriber) applyEvent(data []byte) {
	var env betasync.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		s.invalid.Add(1)
		s.log.Warn("ignoring an undecodable config.updated event", "err", err)
		return
	}
	s.apply(env, "event")
}

// apply swaps to env if it is newer than the current version and valid.
func (s *Subscriber) apply(env betasync.Envelope, via string) {
	cur := s.cur.Load()
	if env.Version <= cur.Version {
		if via == "event" {
			s.stale.Add(1)
			s.log.Debug("ignoring a stale or duplicate version", "version", env.Version, "current", cur.Version)
		}
		if s.markReady(cur.Version > 0) {
			s.log.Info("mapping confirmed from the bus", "version", cur.Version)
		}
		return
	}
	m, err := env.Mapping()
	if err != nil {
		s.invalid.Add(1)
		s.log.Warn("ignoring an invalid mapping version; keeping the current one", "version", env.Version, "via", via, "err", betasync.ErrorMessage(err))
		return
	}
	snap := &Snapshot{
		Mapping:   m,
		Version:   env.Version,
		Source:    env.Source,
		FetchedAt: env.FetchedAt,
		URL:       env.URL,
		ETag:      env.ETag,
		AppliedAt: time.Now().UTC(),
	}
	s.cur.Store(snap)
	s.applied.Add(1)
	s.markReady(true)
	s.log.Info("applied mapping version", "version", env.Version, "previous", cur.Version, "source", env.Source, "via", via)
	if s.onUpdate != nil {
		s.onUpdate(*snap)
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
