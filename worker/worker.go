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
}

// MappingStore stores mapping versions (kv.Mappings).
type MappingStore interface {
	Latest(ctx context.Context) (betasync.Envelope, error)
	Put(ctx context.Context, env betasync.Envelope, expected uint64) (uint64, error)
}

// ScheduleStore stores the shared schedule (kv.Schedules).
type ScheduleStore interface {
	Get(ctx context.Context) (betasync.Schedule, uint64, error)
	Update(ctx context.Context, fence uint64, fn func(*betasync.Schedule) error) (betasync.Schedule, error)
}

// Lease is the worker lease (kv.Lease).
type Lease interface {
	TTL() time.Duration
	Acquire(ctx context.Context, holder string) (uint64, error)
	Renew(ctx context.Context, holder string, rev uint64) (uint64, error)
	Release(ctx context.Context, rev uint64) error
	Holder(ctx context.Context) (string, error)
}

// Metrics receives what the worker does; nil is fine.
type Metrics interface {
	ReloadFinished(trigger, outcome string, at time.Time)
	LeaseHeld(held bool)
}

// Deps are the worker's collaborators.
type Deps struct {
	Mappings  MappingStore
	Schedules ScheduleStore
	Lease     Lease
	// Announce publishes a new version on config.updated.
	Announce func(ctx context.Context, env betasync.Envelope) error
	Metrics  Metrics
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
	cfg     Config
	deps    Deps
	fetcher *fetcher
	log     *slog.Logger

	manual coalescer
	wg     sync.WaitGroup // reload runners and the start-up reload

	tenure atomic.Pointer[tenure] // non-nil while this replica holds the lease
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
	if deps.Mappings == nil || deps.Schedules == nil || deps.Lease == nil || deps.Announce == nil {
		return nil, errors.New("worker: Mappings, Schedules, Lease and Announce are required")
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
		cfg:     cfg,
		deps:    deps,
		fetcher: newFetcher(cfg.URL, cfg.UserAgent, cfg.FetchTimeout),
		log:     cfg.Logger,
	}
	w.manual = coalescer{run: w.manualReload, wg: &w.wg}
	return w, nil
}

type noMetrics struct{}

func (noMetrics) ReloadFinished(string, string, time.Time) {}
func (noMetrics) LeaseHeld(bool)                           {}

func (w *Worker) now() time.Time { return w.cfg.Now().UTC() }

// Holder reports whether this replica holds the lease now.
func (w *Worker) Holder() bool { return w.tenure.Load() != nil }

// Reload fetches now. Concurrent calls are coalesced.
func (w *Worker) Reload(ctx context.Context) (betasync.ReloadResult, error) {
	return w.manual.do(ctx)
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
		w.deps.Metrics.ReloadFinished(trigger, outcome, w.now())
	}()
	start := w.now()
	latest, err := w.stored(ctx)
	if err != nil {
		return res, err
	}
	env, m, err := w.load(ctx, latest)
	if err != nil {
		return res, err
	}
	if m == nil { // not modified
		return w.result(latest, false, nil), nil
	}
	env.FetchedAt = w.now()
	for range 3 {
		if m.Hash() == latest.Hash {
			return w.result(latest, false, m), nil
		}
		rev, err := w.deps.Mappings.Put(ctx, env, latest.Version)
		if betasync.ErrorCode(err) == betasync.ECONFLICT {
			if latest, err = w.stored(ctx); err != nil {
				return res, err
			}
			if latest.Hash != m.Hash() && !latest.FetchedAt.Before(start) {
				// Fetched after this refresh began: keep it.
				res := w.result(latest, false, nil)
				res.Message = fmt.Sprintf("anthropic-beta mapping reloaded: a concurrent reload stored version %d", latest.Version)
				return res, nil
			}
			continue
		}
		if err != nil {
			return res, storeErr("storing the mapping", err)
		}
		env.Version = rev
		if err := w.deps.Announce(ctx, env); err != nil {
			// Pods re-read KV on reconnect and on their safety interval.
			w.log.Warn("announcing the new version failed; pods will catch up from KV", "version", rev, "err", err)
		}
		return w.result(env, true, m), nil
	}
	return res, betasync.Errorf(betasync.ECONFLICT, "the stored mapping kept changing while storing a new version")
}

// stored reads the stored version to write over: a zero Envelope when none
// is stored, and one holding only the revision when the stored entry is
// corrupt (kv.ErrCorrupt), so that a valid version is stored over it.
func (w *Worker) stored(ctx context.Context) (betasync.Envelope, error) {
	latest, err := w.deps.Mappings.Latest(ctx)
	switch {
	case err == nil:
		return latest, nil
	case errors.Is(err, kv.ErrCorrupt):
		w.log.Warn("the stored mapping is corrupt; storing a valid version over it", "version", latest.Version, "err", err)
		return betasync.Envelope{Version: latest.Version}, nil
	case betasync.ErrorCode(err) == betasync.ENOTFOUND:
		return betasync.Envelope{}, nil
	default:
		return betasync.Envelope{}, betasync.Errorf(betasync.EUNAVAILABLE, "reading the stored mapping: %v", err)
	}
}

// load reads the mapping from the configured source. A nil mapping with no
// error means the source answered "not modified".
func (w *Worker) load(ctx context.Context, latest betasync.Envelope) (betasync.Envelope, *betasync.Mapping, error) {
	if w.cfg.LocalOnly {
		return w.localEnvelope()
	}
	var etag, lastModified string
	if latest.Source == betasync.SourceRemote && latest.URL == w.cfg.URL {
		etag, lastModified = latest.ETag, latest.LastModified
	}
	f, err := w.fetcher.fetch(ctx, etag, lastModified)
	if err != nil {
		return betasync.Envelope{}, nil, err
	}
	if f.notModified {
		return betasync.Envelope{}, nil, nil
	}
	m, err := betasync.Parse(f.body)
	if err != nil {
		return betasync.Envelope{}, nil, betasync.Errorf(betasync.EUPSTREAM, "the document at %s is not a valid mapping: %s", w.cfg.URL, betasync.ErrorMessage(err))
	}
	env := betasync.NewEnvelope(m, betasync.SourceRemote, w.now())
	env.URL, env.ETag, env.LastModified = w.cfg.URL, f.etag, f.lastModified
	return env, m, nil
}

// localEnvelope wraps the local file's mapping, or the embedded default.
func (w *Worker) localEnvelope() (betasync.Envelope, *betasync.Mapping, error) {
	m, source, err := w.localMapping()
	if err != nil {
		return betasync.Envelope{}, nil, err
	}
	env := betasync.NewEnvelope(m, source, w.now())
	if source == betasync.SourceLocal {
		env.URL = "file://" + w.cfg.LocalFile
	}
	return env, m, nil
}

// localMapping returns the local file's mapping, or the embedded default.
func (w *Worker) localMapping() (*betasync.Mapping, string, error) {
	if w.cfg.LocalFile == "" {
		return betasync.Default(), betasync.SourceEmbedded, nil
	}
	m, err := loadFile(w.cfg.LocalFile)
	if err != nil {
		return nil, "", betasync.Errorf(betasync.EUPSTREAM, "local mapping %s: %s", w.cfg.LocalFile, betasync.ErrorMessage(err))
	}
	return m, betasync.SourceLocal, nil
}

func loadFile(path string) (*betasync.Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, betasync.Errorf(betasync.EINVALID, "%v", err)
	}
	return betasync.Parse(data)
}

// result describes env, the version now stored. m is its mapping when the
// caller has it; otherwise it is decoded from env.
func (w *Worker) result(env betasync.Envelope, changed bool, m *betasync.Mapping) betasync.ReloadResult {
	msg := fmt.Sprintf("anthropic-beta mapping reloaded: version %d unchanged", env.Version)
	if changed {
		msg = fmt.Sprintf("anthropic-beta mapping reloaded: new version %d", env.Version)
	}
	if m == nil && env.Config != nil {
		m, _ = env.Mapping() // a stored version was validated when it was stored
	}
	var providers int
	var warnings []string
	if m != nil {
		providers, warnings = len(m.Providers()), m.Warnings()
	}
	return betasync.ReloadResult{
		Status:         betasync.StatusSuccess,
		Message:        msg,
		Warnings:       warnings,
		ProvidersCount: providers,
		Timestamp:      w.now(),
		Version:        env.Version,
		Changed:        changed,
		Source:         env.Source,
		Hash:           env.Hash,
		URL:            env.URL,
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
	_, err := w.deps.Schedules.Update(ctx, fence, func(s *betasync.Schedule) error {
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
		s.Failures = 0
		if s.IntervalHours > 0 {
			next := now.Add(s.Interval())
			s.NextRun = &next
		}
		return nil
	})
	if err != nil {
		w.log.Warn("recording the reload in the schedule failed", "err", err)
	}
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
func (w *Worker) SetSchedule(ctx context.Context, hours float64) (betasync.ScheduleResult, error) {
	if err := betasync.ValidateHours(hours); err != nil {
		return betasync.ScheduleResult{}, err
	}
	now := w.now()
	s, err := w.deps.Schedules.Update(ctx, 0, func(s *betasync.Schedule) error {
		s.IntervalHours = hours
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
	return betasync.ScheduleResult{
		Status:        betasync.StatusSuccess,
		Message:       fmt.Sprintf("anthropic-beta mapping reload scheduled every %g hours", hours),
		IntervalHours: hours,
		NextRun:       s.NextRun,
		Timestamp:     now,
	}, nil
}

// CancelSchedule stops scheduled reloads.
func (w *Worker) CancelSchedule(ctx context.Context) (betasync.CancelResult, error) {
	_, err := w.deps.Schedules.Update(ctx, 0, func(s *betasync.Schedule) error {
		s.IntervalHours, s.NextRun, s.Failures = 0, nil, 0
		return nil
	})
	if err != nil {
		return betasync.CancelResult{}, storeErr("cancelling the schedule", err)
	}
	w.log.Info("schedule cancelled")
	return betasync.CancelResult{
		Status:    betasync.StatusSuccess,
		Message:   "anthropic-beta mapping reload schedule cancelled",
		Timestamp: w.now(),
	}, nil
}

// Status returns the shared schedule and the current version.
func (w *Worker) Status(ctx context.Context) (betasync.ScheduleStatus, error) {
	s, _, err := w.deps.Schedules.Get(ctx)
	if err != nil {
		return betasync.ScheduleStatus{}, storeErr("reading the schedule", err)
	}
	latest, err := w.deps.Mappings.Latest(ctx)
	if err != nil && betasync.ErrorCode(err) != betasync.ENOTFOUND {
		return betasync.ScheduleStatus{}, storeErr("reading the mapping", err)
	}
	holder, err := w.deps.Lease.Holder(ctx)
	if err != nil {
		return betasync.ScheduleStatus{}, storeErr("reading the lease", err)
	}
	st := betasync.ScheduleStatus{
		Scheduled:     s.IntervalHours > 0,
		LastRun:       s.LastRun,
		LastSuccess:   s.LastSuccess,
		LastError:     s.LastError,
		ConfigVersion: latest.Version,
		ConfigSource:  latest.Source,
		ConfigHash:    latest.Hash,
		LockHolder:    holder,
	}
	if st.Scheduled {
		st.IntervalHours = &s.IntervalHours
		st.NextRun = s.NextRun
	}
	return st, nil
}

func storeErr(doing string, err error) error {
	if code := betasync.ErrorCode(err); code != betasync.EINTERNAL {
		return err
	}
	return betasync.Errorf(betasync.EUNAVAILABLE, "%s: %v", doing, err)
}
