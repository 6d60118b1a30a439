// Package worker turns commands into fetched, validated, stored and
// announced mapping versions, and runs the shared schedule.
//
// Any replica answers reload and schedule commands (concurrent reloads on a
// replica are coalesced). Only the replica holding the KV lease runs the
// schedule: every replica ticks, the holder runs due reloads. A scheduled
// run first claims its slot with a fenced write (next_run moves past the
// claim window), then fetches, stores and announces, then records the
// outcome with another fenced write; a holder that dies mid-run is followed
// by one that retries once the claim window has passed, so no interval is
// skipped or run twice. See package kv for the lease and fencing protocol.
//
// Every successful reload, whatever started it (a manual reload, the
// start-up reload, or a scheduled run), sets next_run to its own time plus
// the interval; last_run is the time of the last reload of any kind,
// successful or not. This is LiteLLM's behaviour: the schedule counts from
// the last time the mapping was loaded, so restarting a replica, whose
// start-up reload counts, postpones the next scheduled run.
//
// Every worker replica must have the same source settings (URL, LocalOnly,
// LocalFile): any replica may answer a reload command or run the schedule,
// so replicas with different settings would store different mappings
// depending on which one answered.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/kv"
)

// Defaults for Config.
const (
	DefaultURL           = "https://raw.githubusercontent.com/BerriAI/litellm/main/litellm/anthropic_beta_headers_config.json"
	DefaultFetchTimeout  = 10 * time.Second
	DefaultCheckInterval = 10 * time.Second
	DefaultRetryBase     = 30 * time.Second
)

// Config configures a Worker.
type Config struct {
	ReplicaID     string        // names this replica in status and logs (required)
	URL           string        // where to fetch the mapping; DefaultURL when empty
	LocalOnly     bool          // never fetch: reload re-reads LocalFile
	LocalFile     string        // the local mapping; the embedded default when empty
	FetchTimeout  time.Duration // one fetch, body included
	CheckInterval time.Duration // how often every replica checks the schedule
	RetryBase     time.Duration // first retry delay after a failed scheduled run; doubles, capped at the interval
	UserAgent     string        // sent with every fetch
	Now           func() time.Time
	Logger        *slog.Logger
	FleetWindow   time.Duration // how long Fleet collects pod answers; reported as window_ms
}

// Metrics receives what the worker does; nil is fine.
type Metrics interface {
	ReloadFinished(trigger, outcome string, at time.Time)
	LeaseHeld(held bool)
	// FetchFinished observes one upstream fetch: outcome ok, not_modified
	// or error.
	FetchFinished(outcome string, d time.Duration)
	// ScheduleNext is the next scheduled run this replica wrote or read
	// (nil: not scheduled).
	ScheduleNext(next *time.Time)
}

// Deps are the worker's collaborators.
type Deps struct {
	Store *kv.Store // the buckets (kv.Ensure)
	// Announce publishes a new version on config.updated (and may hand it
	// to the replica's own subscriber).
	Announce func(ctx context.Context, snap *betasync.Snapshot) error
	Metrics  Metrics // nil is fine
	// Beacon names the stored version on config.current; the lease holder
	// calls it every CheckInterval. nil: no beacon.
	Beacon func(version uint64, hash string) error
	// Fleet collects every pod's status (publisher.Fleet with the
	// configured window); nil: the fleet command answers EUNAVAILABLE.
	Fleet func(ctx context.Context) ([]betasync.PodStatus, error)
}

// Reload triggers and outcomes, as logged and counted.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
	TriggerStartup  = "startup"

	OutcomeChanged   = "changed"
	OutcomeUnchanged = "unchanged"
	OutcomeError     = "error"
)

// Worker fetches, stores and announces mapping versions. Its command methods
// are safe for concurrent use; Run drives the lease and the schedule.
type Worker struct {
	cfg       Config
	mappings  *kv.Mappings
	schedules *kv.Schedules
	lease     *kv.Lease
	overrides *kv.OverrideStore
	announce  func(ctx context.Context, snap *betasync.Snapshot) error
	metrics   Metrics
	fetcher   *fetcher
	log       *slog.Logger

	manual coalescer
	// life ends when Run's context does: reloads that outlive the command
	// that started them (coalesced ones) stop then too.
	life   context.Context
	end    context.CancelFunc
	writes chan struct{}  // one mapping write (reload or rollback) at a time: lockWrites
	wg     sync.WaitGroup // reload runners and the start-up reload

	tenure atomic.Pointer[tenure] // non-nil while this replica holds the lease

	fleet  func(ctx context.Context) ([]betasync.PodStatus, error) // fleet.go
	beacon func(version uint64, hash string) error
	// known is the version this replica last read from KV or stored: the
	// validators of a fetch that runs while KV is read (refresh).
	known atomic.Pointer[betasync.Snapshot]
}

// tenure is one continuous holding of the lease.
type tenure struct {
	token  uint64          // the lease revision at acquisition: the fencing token
	ctx    context.Context // cancelled the moment the lease is lost
	cancel context.CancelFunc
}

// New checks cfg and returns a worker.
func New(cfg Config, deps Deps) (*Worker, error) {
	if cfg.ReplicaID == "" {
		return nil, errors.New("worker: ReplicaID is required")
	}
	if deps.Store == nil || deps.Announce == nil {
		return nil, errors.New("worker: Store and Announce are required")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if err := checkURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.FetchTimeout < 0 || cfg.CheckInterval < 0 || cfg.RetryBase < 0 {
		return nil, errors.New("worker: durations must be positive")
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "betasync"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = noMetrics{}
	}
	if cfg.LocalFile != "" {
		if _, err := loadFile(cfg.LocalFile); err != nil {
			return nil, fmt.Errorf("worker: local mapping: %w", err)
		}
	}
	w := &Worker{
		cfg:       cfg,
		mappings:  deps.Store.Mappings,
		schedules: deps.Store.Schedules,
		lease:     deps.Store.Lease,
		overrides: deps.Store.Overrides,
		announce:  deps.Announce,
		metrics:   deps.Metrics,
		fleet:     deps.Fleet,
		beacon:    deps.Beacon,
		fetcher:   newFetcher(cfg.URL, cfg.UserAgent, cfg.FetchTimeout),
		log:       cfg.Logger,
		writes:    make(chan struct{}, 1),
	}
	w.life, w.end = context.WithCancel(context.Background())
	w.manual = coalescer{run: w.manualReload, wg: &w.wg, life: w.life}
	return w, nil
}

type noMetrics struct{}

func (noMetrics) ReloadFinished(string, string, time.Time) {}
func (noMetrics) LeaseHeld(bool)                           {}
func (noMetrics) FetchFinished(string, time.Duration)      {}
func (noMetrics) ScheduleNext(*time.Time)                  {}

func (w *Worker) now() time.Time { return w.cfg.Now().UTC() }

// Holder reports whether this replica holds the lease now.
func (w *Worker) Holder() bool { return w.tenure.Load() != nil }

// Reload fetches now. Concurrent calls are coalesced: the version stored
// names the actor of the first caller that joined the reload; every caller
// gets its own audit line.
func (w *Worker) Reload(ctx context.Context) (res betasync.ReloadResult, err error) {
	res, err = w.manual.do(ctx)
	w.audit(ctx, "reload", err, "version", res.Version, "changed", res.Changed)
	return res, err
}

func (w *Worker) manualReload(ctx context.Context) (betasync.ReloadResult, error) {
	res, err := w.refresh(ctx, TriggerManual)
	w.record(ctx, 0, false, err)
	return res, err
}

// refresh loads the mapping from its source and, if it differs from the
// stored version, stores and announces it.
//
// The store is a compare-and-swap on the version read before loading. On a
// lost race refresh re-reads the stored version and keeps it, storing
// nothing, when it has the same content or its FetchedAt is at or after the
// moment this refresh began: that fetch ended while this one was under way,
// so this refresh's document is not known to be newer, and putting it on top
// could roll the fleet back. Only a version fetched before this refresh
// began, such as the start-up default, is replaced. FetchedAt comes from the
// storing replica's clock.
//
// What is stored is the loaded document with the overrides merged over it,
// read after the stored version (see mergeOverrides); every retry re-reads
// both, so a concurrent override change is never lost. Versions stored for
// an override keep the FetchedAt of their upstream document, so the rule
// above keeps only versions whose upstream was fetched after this refresh
// began.
func (w *Worker) refresh(ctx context.Context, trigger string) (res betasync.ReloadResult, err error) {
	defer func() {
		outcome := OutcomeUnchanged
		switch {
		case err != nil:
			outcome = OutcomeError
			w.log.Warn("reload failed; keeping the last good mapping", "trigger", trigger, "err", betasync.ErrorMessage(err))
		case res.Changed:
			outcome = OutcomeChanged
			w.log.Info("stored a new mapping version", "trigger", trigger, "version", res.Version, "hash", res.Hash, "source", res.Source)
			for _, warning := range res.Warnings {
				w.log.Warn("the new mapping has an entry that can never match", "version", res.Version, "warning", warning)
			}
		default:
			w.log.Info("mapping unchanged", "trigger", trigger, "version", res.Version)
		}
		logRedundant(w.log, res)
		w.metrics.ReloadFinished(trigger, outcome, w.now())
	}()
	release, err := w.lockWrites(ctx)
	if err != nil {
		return res, err
	}
	defer release()
	start := w.now()
	snap, latest, expected, err := w.fetchBesideRead(ctx)
	if err != nil {
		return res, err
	}
	if snap == nil { // not modified
		return w.result(latest, false), nil
	}
	snap.FetchedAt = w.now()
	upstream := snap
	for attempt := range storeAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return res, err
		}
		if snap, err = w.mergeOverrides(ctx, upstream); err != nil {
			return res, err
		}
		snap.Actor = actorName(ctx, trigger)
		if latest.SameContent(snap) {
			return w.result(latest, false), nil
		}
		snap.Changes = nil
		if latest != nil {
			snap.Changes = betasync.Diff(latest.Mapping, snap.Mapping)
		}
		rev, err := w.mappings.Put(ctx, snap, expected)
		if betasync.ErrorCode(err) == betasync.ECONFLICT {
			if latest, expected, err = w.stored(ctx); err != nil {
				return res, err
			}
			if latest != nil && !latest.SameContent(snap) && !latest.FetchedAt.Before(start) {
				// Fetched after this refresh began: keep it.
				res := w.result(latest, false)
				res.Summary = fmt.Sprintf("a concurrent reload stored version %d", latest.Version)
				return res, nil
			}
			continue
		}
		if err != nil {
			return res, storeErr("storing the mapping", err)
		}
		snap.Version = rev
		w.known.Store(snap)
		if err := w.announce(ctx, snap); err != nil {
			// Pods re-read KV on reconnect and on their safety interval.
			w.log.Warn("announcing the new version failed; pods will catch up from KV", "version", rev, "err", err)
		}
		return w.result(snap, true), nil
	}
	return res, betasync.Errorf(betasync.ECONFLICT, "the stored mapping kept changing while storing a new version")
}

// stored reads the stored version to write over, and the revision to
// expect when writing: nil and 0 when none is stored, and nil and the
// entry's revision when the stored entry is not a valid version
// (kv.ErrCorrupt), so that a valid version is stored over it, from a full
// fetch (no conditional request on a version that cannot be trusted).
func (w *Worker) stored(ctx context.Context) (*betasync.Snapshot, uint64, error) {
	latest, err := w.mappings.Latest(ctx)
	if corrupt, ok := errors.AsType[*kv.CorruptError](err); ok {
		w.log.Warn("the stored mapping is not valid; storing a valid version over it", "version", corrupt.Revision, "err", err)
		w.known.Store(nil)
		return nil, corrupt.Revision, nil
	}
	switch {
	case err == nil:
		w.known.Store(latest)
		return latest, latest.Version, nil
	case betasync.ErrorCode(err) == betasync.ENOTFOUND:
		return nil, 0, nil
	default:
		return nil, 0, betasync.Errorf(betasync.EUNAVAILABLE, "reading the stored mapping: %v", err)
	}
}

// load reads the mapping from the configured source. nil with no error
// means the source answered "not modified". latest (nil when none is
// usable) gives the validators of a conditional fetch.
func (w *Worker) load(ctx context.Context, latest *betasync.Snapshot) (*betasync.Snapshot, error) {
	fetching(ctx)
	if w.cfg.LocalOnly {
		return w.localSnapshot()
	}
	v := w.validators(latest)
	etag, lastModified := v.etag, v.lastModified
	began := time.Now()
	f, err := w.fetcher.fetch(ctx, etag, lastModified)
	switch {
	case err != nil:
		w.metrics.FetchFinished("error", time.Since(began))
	case f.notModified:
		w.metrics.FetchFinished("not_modified", time.Since(began))
	default:
		w.metrics.FetchFinished("ok", time.Since(began))
	}
	if err != nil {
		return nil, err
	}
	if f.notModified {
		return nil, nil
	}
	m, err := betasync.Parse(f.body)
	if err != nil {
		return nil, betasync.Errorf(betasync.EUPSTREAM, "the document at %s is not a valid mapping: %s", w.cfg.URL, betasync.ErrorMessage(err))
	}
	snap := betasync.NewSnapshot(m, betasync.SourceRemote, w.now())
	snap.URL, snap.ETag, snap.LastModified = w.cfg.URL, f.etag, f.lastModified
	return snap, nil
}

// fetchBesideRead reads the stored version and fetches. When this replica
// has seen a version before, the fetch does not wait for the KV read: it
// sends the validators of the version last seen, and its answer is used
// only if the read returns that same version. Then nothing was stored
// between the start of the fetch and the read (KV would have returned it),
// and anything stored after the read makes the compare-and-swap fail, as
// when the fetch follows the read. When KV holds another version (another
// replica stored one, possibly after this fetch began), the answer is
// dropped and the fetch runs again after the read, so that a version
// stored meanwhile is never overwritten by an older fetch.
func (w *Worker) fetchBesideRead(ctx context.Context) (snap, latest *betasync.Snapshot, expected uint64, err error) {
	known := w.known.Load()
	if known == nil {
		if latest, expected, err = w.stored(ctx); err != nil {
			return nil, nil, 0, err
		}
		snap, err = w.load(ctx, latest)
		return snap, latest, expected, err
	}
	type fetched struct {
		snap *betasync.Snapshot
		err  error
	}
	got := make(chan fetched, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		snap, err := w.load(fctx, known)
		got <- fetched{snap, err}
	}()
	latest, expected, err = w.stored(ctx)
	if err != nil {
		cancel()
		<-got
		return nil, nil, 0, err
	}
	f := <-got
	if latest == nil || latest.Version != known.Version || latest.Hash() != known.Hash() || w.validators(latest) != w.validators(known) {
		snap, err = w.load(ctx, latest)
		return snap, latest, expected, err
	}
	return f.snap, latest, expected, f.err
}

// validators are what a conditional fetch sends for latest: its ETag and
// Last-Modified when it came from the configured URL, none otherwise.
type validators struct{ etag, lastModified string }

func (w *Worker) validators(latest *betasync.Snapshot) validators {
	if latest != nil && (latest.Source == betasync.SourceRemote || latest.Source == betasync.SourceOverride) && latest.URL == w.cfg.URL {
		return validators{latest.ETag, latest.LastModified}
	}
	return validators{}
}

// localSnapshot wraps the local file's mapping, or the embedded default.
func (w *Worker) localSnapshot() (*betasync.Snapshot, error) {
	if w.cfg.LocalFile == "" {
		return betasync.NewSnapshot(betasync.Default(), betasync.SourceEmbedded, w.now()), nil
	}
	m, err := loadFile(w.cfg.LocalFile)
	if err != nil {
		return nil, betasync.Errorf(betasync.EUPSTREAM, "local mapping %s: %s", w.cfg.LocalFile, betasync.ErrorMessage(err))
	}
	snap := betasync.NewSnapshot(m, betasync.SourceLocal, w.now())
	snap.URL = "file://" + w.cfg.LocalFile
	return snap, nil
}

func loadFile(path string) (*betasync.Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, betasync.Errorf(betasync.EINVALID, "%v", err)
	}
	return betasync.Parse(data)
}

// result describes snap, the version now stored.
func (w *Worker) result(snap *betasync.Snapshot, changed bool) betasync.ReloadResult {
	summary := fmt.Sprintf("version %d unchanged", snap.Version)
	var changes betasync.Changes
	if changed {
		summary = fmt.Sprintf("new version %d", snap.Version)
		changes = snap.Changes
	}
	providers := len(snap.Providers())
	return betasync.ReloadResult{
		Status:         betasync.StatusSuccess,
		Message:        fmt.Sprintf(betasync.LiteLLMReloadMessage, providers),
		Summary:        summary,
		Warnings:       snap.Warnings(),
		ProvidersCount: providers,
		Timestamp:      w.now(),
		Version:        snap.Version,
		Changed:        changed,
		Source:         snap.Source,
		Hash:           snap.Hash(),
		URL:            snap.URL,
		Changes:        changes,

		RedundantOverrides: snap.Overrides.Redundant(),
	}
}

// record writes a run's outcome to the schedule. fence is the holder's token
// for scheduled runs, 0 for manual and start-up ones. Any run sets last_run.
// A successful run of any kind sets last_success and, while a schedule is
// set, next_run = now + interval, so a manual or start-up reload postpones
// the next scheduled run. A failed scheduled run sets next_run to the
// backoff; a failed manual or start-up run leaves next_run alone.
func (w *Worker) record(ctx context.Context, fence uint64, scheduled bool, runErr error) {
	now := w.now()
	rec, err := w.schedules.Update(ctx, fence, func(s *kv.Schedule) error {
		s.LastRun = &now
		if runErr != nil {
			s.LastError = &betasync.RunError{Time: now, Message: betasync.ErrorMessage(runErr)}
			if scheduled && s.IntervalHours > 0 {
				s.Failures++
				next := now.Add(w.backoff(s.Failures, s.Interval()))
				s.NextRun = &next
			}
			return nil
		}
		s.LastSuccess = &now
		s.LastError = nil // last_error is the error of the last run: none after a success
		s.Failures = 0
		if s.IntervalHours > 0 {
			next := now.Add(s.Interval())
			s.NextRun = &next
		}
		return nil
	})
	if err != nil {
		w.log.Warn("recording the reload in the schedule failed", "err", err)
		return
	}
	w.metrics.ScheduleNext(rec.NextRun)
}

// backoff is the delay before retrying after n consecutive failed runs.
func (w *Worker) backoff(n int, interval time.Duration) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < n && d < interval; i++ {
		d *= 2
	}
	return min(d, interval)
}

// SetSchedule makes every replica's lease holder reload every hours hours.
// The first run is due an interval after the last successful reload, or at
// once when nothing was ever loaded successfully or that is longer ago than
// the interval. (A failed reload does not count: the mapping it left is as
// old as the last success.) After that, any successful reload, manual and
// start-up ones included, sets next_run to its time plus the interval, so a
// replica restart postpones the schedule (see the package doc).
func (w *Worker) SetSchedule(ctx context.Context, hours float64) (res betasync.ScheduleResult, err error) {
	defer func() { w.audit(ctx, "schedule.set", err, "interval_hours", hours) }()
	if err := betasync.ValidateHours(hours); err != nil {
		return betasync.ScheduleResult{}, err
	}
	now := w.now()
	w.reportCorruptSchedule(ctx, "setting the schedule")
	s, err := w.schedules.Update(ctx, 0, func(s *kv.Schedule) error {
		s.IntervalHours = hours
		s.ScheduledAt = &now
		s.Failures = 0
		next := now
		if s.LastSuccess != nil {
			if due := s.LastSuccess.Add(s.Interval()); due.After(now) {
				next = due
			}
		}
		s.NextRun = &next
		return nil
	})
	if err != nil {
		return betasync.ScheduleResult{}, storeErr("setting the schedule", err)
	}
	w.log.Info("schedule set", "interval_hours", hours, "next_run", s.NextRun)
	w.metrics.ScheduleNext(s.NextRun)
	return betasync.ScheduleResult{
		Status:        betasync.StatusSuccess,
		Message:       fmt.Sprintf(betasync.LiteLLMScheduleMessage, betasync.LiteLLMHours(hours)),
		IntervalHours: hours,
		NextRun:       s.NextRun,
		Timestamp:     now,
	}, nil
}

// CancelSchedule stops scheduled reloads.
func (w *Worker) CancelSchedule(ctx context.Context) (res betasync.CancelResult, err error) {
	defer func() { w.audit(ctx, "schedule.cancel", err) }()
	w.reportCorruptSchedule(ctx, "cancelling the schedule")
	_, err = w.schedules.Update(ctx, 0, func(s *kv.Schedule) error {
		s.IntervalHours, s.ScheduledAt, s.NextRun, s.Failures = 0, nil, nil, 0
		return nil
	})
	if err != nil {
		return betasync.CancelResult{}, storeErr("cancelling the schedule", err)
	}
	w.log.Info("schedule cancelled")
	w.metrics.ScheduleNext(nil)
	return betasync.CancelResult{
		Status:    betasync.StatusSuccess,
		Message:   betasync.LiteLLMCancelMessage,
		Timestamp: w.now(),
	}, nil
}

// reportCorruptSchedule logs a corrupt schedule record that an admin
// action is about to write over, with what it held.
func (w *Worker) reportCorruptSchedule(ctx context.Context, doing string) {
	_, _, err := w.schedules.Get(ctx)
	if c, ok := errors.AsType[*kv.CorruptScheduleError](err); ok {
		w.log.Warn("the stored schedule record is corrupt; this command replaces it", "command", doing,
			"revision", c.Revision, "err", c.Reason, "replaced", truncate(string(c.Value), 512))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Status returns the shared schedule and the current version. A corrupt
// schedule record is reported in ScheduleError, not as a failure: setting
// or cancelling the schedule repairs it.
func (w *Worker) Status(ctx context.Context) (betasync.ScheduleStatus, error) {
	return ReadStatus(ctx, &kv.Store{Mappings: w.mappings, Schedules: w.schedules, Lease: w.lease})
}

// StatusFromKV binds to the buckets without creating them and reads the
// status (ReadStatus). Buckets that do not exist yet mean no worker ever
// started, so nothing was scheduled: the empty status.
// With v set, a stored version v rejects is left out, as a worker does.
func StatusFromKV(ctx context.Context, js jetstream.JetStream, v *betasync.Verifier) (betasync.ScheduleStatus, error) {
	store, err := kv.Open(ctx, js)
	if betasync.ErrorCode(err) == betasync.ENOTFOUND {
		return betasync.ScheduleStatus{}, nil
	}
	if err != nil {
		return betasync.ScheduleStatus{}, storeErr("opening the buckets", err)
	}
	store.Mappings = store.Mappings.WithVerifier(v)
	return ReadStatus(ctx, store)
}

// ReadStatus reads the status from KV: what a worker answers, and what an
// API replica answers itself when no worker does (the status lives in KV).
func ReadStatus(ctx context.Context, store *kv.Store) (betasync.ScheduleStatus, error) {
	s, _, err := store.Schedules.Get(ctx)
	var corrupt string
	if c, ok := errors.AsType[*kv.CorruptScheduleError](err); ok {
		corrupt = fmt.Sprintf("the schedule record (revision %d) is corrupt: %s; set or cancel the schedule to replace it", c.Revision, c.Reason)
		err = nil
	}
	if err != nil {
		return betasync.ScheduleStatus{}, storeErr("reading the schedule", err)
	}
	latest, err := store.Mappings.Latest(ctx)
	if err != nil && betasync.ErrorCode(err) != betasync.ENOTFOUND && !errors.Is(err, kv.ErrCorrupt) {
		return betasync.ScheduleStatus{}, storeErr("reading the mapping", err)
	}
	holder, err := store.Lease.Holder(ctx)
	if err != nil {
		return betasync.ScheduleStatus{}, storeErr("reading the lease", err)
	}
	st := StatusOf(s, latest, holder)
	st.ScheduleError = corrupt
	return st, nil
}

// StatusOf builds the status from the stored schedule, the latest stored
// version (nil if none) and the lease holder. The worker answers with it,
// and an API replica that no worker answers reads KV and answers with it
// too (see ReadStatus).
//
// LiteLLM's keys keep LiteLLM's meaning: last_run is the last reload since
// the schedule was set, null when not scheduled; next_run is null until
// such a reload ran. betasync's own view is in last_reload and
// next_scheduled_run.
func StatusOf(s kv.Schedule, latest *betasync.Snapshot, holder string) betasync.ScheduleStatus {
	st := betasync.ScheduleStatus{
		Scheduled:   s.IntervalHours > 0,
		LastReload:  s.LastRun,
		LastSuccess: s.LastSuccess,
		LastError:   s.LastError,
		LockHolder:  holder,
	}
	if latest != nil {
		st.ConfigVersion, st.ConfigSource, st.ConfigHash = latest.Version, latest.Source, latest.Hash()
	}
	if st.Scheduled {
		st.IntervalHours = &s.IntervalHours
		st.NextScheduledRun = s.NextRun
		// A record from before scheduled_at existed: every run counts.
		if s.LastRun != nil && (s.ScheduledAt == nil || !s.LastRun.Before(*s.ScheduledAt)) {
			st.LastRun = s.LastRun
			st.NextRun = s.NextRun
		}
	}
	return st
}

func storeErr(doing string, err error) error {
	if code := betasync.ErrorCode(err); code != betasync.EINTERNAL {
		return err
	}
	return betasync.Errorf(betasync.EUNAVAILABLE, "%s: %v", doing, err)
}
