package publisher

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/betasync/betasync"
)

// ServiceConfig configures Serve.
type ServiceConfig struct {
	Version   string        // the service version (semver), shown by `nats micro ls`
	ReplicaID string        // names this replica in the service metadata
	Timeout   time.Duration // bounds one command; 30s when 0
	Logger    *slog.Logger  // nil discards
	// MaxInFlight bounds the commands handled at once; DefaultMaxInFlight
	// when 0. Beyond it a command is refused at once (EUNAVAILABLE).
	MaxInFlight int
}

// replyMargin is taken off a caller's deadline, so that a command that
// finishes just in time still has its reply reach the caller.
const replyMargin = 100 * time.Millisecond

// DefaultMaxInFlight is generous on purpose: concurrent reloads are
// coalesced, so a burst of them costs one parked goroutine each, not a fetch
// each, and should be answered rather than refused.
const DefaultMaxInFlight = 1024

// Service is the running betasync service (see monitor.go).
type Service struct {
	nc  *nats.Conn
	mon *monitor
	cmd betasync.Commands
	cfg ServiceConfig
	sem chan struct{}

	mu      sync.Mutex
	stopped bool         // once set, no command starts
	dropped atomic.Int64 // commands that came too late

	base  context.Context // every command's; cancelled when a bounded shutdown runs out
	abort context.CancelFunc
	wg    sync.WaitGroup

	stop sync.Once
}

// serveFunc decodes a command's payload and runs it.
type serveFunc func(ctx context.Context, cmd betasync.Commands, payload []byte) (any, error)

// Serve serves cmd as the betasync service on nc, in the default queue
// group, so each command is answered by one replica. Each request is handled
// on its own goroutine (so concurrent reloads can be coalesced), bounded by
// MaxInFlight. When nc is connected, Serve returns once the server knows
// the endpoints, so a request sent right after it (on any connection) is
// answered.
func Serve(nc *nats.Conn, cmd betasync.Commands, cfg ServiceConfig) (*Service, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = "0.0.0"
	}
	s := &Service{nc: nc, cmd: cmd, cfg: cfg, sem: make(chan struct{}, cfg.MaxInFlight)}
	//nolint:gosec // cancelled by Shutdown when its bound runs out, or never: commands have their own deadlines
	s.base, s.abort = context.WithCancel(context.Background())
	// `nats micro ls` shows the description, not the metadata: it names
	// the replica, so operators can tell instances apart.
	s.mon = newMonitor(cfg.Version,
		"betasync replica "+cfg.ReplicaID+": reload and schedule the anthropic-beta mapping",
		map[string]string{"replica": cfg.ReplicaID})
	for _, e := range endpoints {
		ep := &endpoint{name: e.name, subject: e.subject, serve: e.serve}
		sub, err := nc.QueueSubscribe(e.subject, micro.DefaultQueueGroup, func(m *nats.Msg) { s.handle(ep, m) })
		if err != nil {
			s.unsubscribe()
			return nil, err
		}
		ep.sub = sub
		s.mon.endpoints = append(s.mon.endpoints, ep)
	}
	if err := s.mon.subscribeVerbs(nc); err != nil {
		s.unsubscribe()
		return nil, err
	}
	if nc.IsConnected() {
		if err := nc.Flush(); err != nil {
			// The subscriptions are sent again on reconnect.
			cfg.Logger.Warn("flushing the service subscriptions", "err", err)
		}
	}
	return s, nil
}

// unsubscribe drains the endpoints (what was delivered is still handled:
// refused once stopped is set) and leaves discovery.
func (s *Service) unsubscribe() {
	s.mon.unsubscribeVerbs()
	for _, ep := range s.mon.endpoints {
		_ = ep.sub.Drain()
	}
}

// Stop unsubscribes and waits for the commands in flight; no command starts
// after it returns. Calling it twice is safe.
func (s *Service) Stop() error { return s.Shutdown(context.Background()) }

// Shutdown is Stop with a bound: when ctx ends, the commands still in
// flight are cancelled (their callers get an error, or retry on another
// replica), and Shutdown returns once they have given up.
func (s *Service) Shutdown(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.abort)
	defer stop()
	s.stop.Do(func() {
		s.unsubscribe()
		// Flush, so the server has dropped the subscriptions and routes
		// new requests to other replicas, then refuse whatever the drain
		// still delivers.
		if s.nc.IsConnected() {
			_ = s.nc.Flush()
		}
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

// Dropped is the number of commands dropped because they arrived after
// their caller had moved on (see HeaderStartBy).
func (s *Service) Dropped() int64 { return s.dropped.Load() }

// Info returns the service's description, as `nats micro info` shows it.
func (s *Service) Info() micro.Info { return s.mon.info() }

// Stats returns the endpoints' counters, as `nats micro stats` shows them.
func (s *Service) Stats() micro.Stats { return s.mon.stats() }

// handle answers one request on its own goroutine. Every reply, sent
// whenever the command ends, is counted in the endpoint's stats: a failed
// one in num_errors, with its "code:message" as last_error.
func (s *Service) handle(ep *endpoint, m *nats.Msg) {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		s.finish(ep, start, m.Subject, m.Reply, nil, betasync.Errorf(betasync.EUNAVAILABLE, "replica %s is stopping", s.cfg.ReplicaID))
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.finish(ep, start, m.Subject, m.Reply, nil, betasync.Errorf(betasync.EUNAVAILABLE, "too many commands in flight on replica %s", s.cfg.ReplicaID))
		return
	}
	run, deadline, progress := admit(m.Header, start)
	if !run {
		<-s.sem
		s.dropped.Add(1)
		s.mon.done(ep, time.Since(start), 0, "")
		s.cfg.Logger.Warn("dropped a command that arrived after its caller moved on", "subject", m.Subject)
		return
	}
	if progress {
		s.progress(m.Reply, "ack")
	}
	if !deadline.IsZero() {
		// Leave the reply time to reach the caller before it gives up.
		deadline = deadline.Add(-replyMargin)
	}
	if deadline.IsZero() || deadline.After(start.Add(s.cfg.Timeout)) {
		deadline = start.Add(s.cfg.Timeout)
	}
	s.wg.Go(func() {
		defer func() { <-s.sem }()
		ctx, cancel := context.WithDeadline(withActor(s.base, m.Header), deadline)
		defer cancel()
		done := make(chan struct{})
		if progress {
			s.wg.Go(func() { s.heartbeat(m.Reply, done) })
		}
		out, err := ep.serve(ctx, s.cmd, m.Data)
		close(done)
		switch {
		case err == nil:
		case s.base.Err() != nil && (betasync.ErrorCode(err) == betasync.EINTERNAL || betasync.ErrorCode(err) == betasync.EUNAVAILABLE):
			err = betasync.Errorf(betasync.EUNAVAILABLE, "replica %s stopped before the command finished; it may or may not have taken effect", s.cfg.ReplicaID)
		case ctx.Err() != nil && betasync.ErrorCode(err) == betasync.EINTERNAL:
			err = betasync.Errorf(betasync.EUNAVAILABLE, "%s did not finish in time on replica %s", m.Subject, s.cfg.ReplicaID)
		}
		s.finish(ep, start, m.Subject, m.Reply, out, err)
	})
}

// finish sends the reply and counts it.
func (s *Service) finish(ep *endpoint, start time.Time, subject, reply string, out any, err error) {
	s.reply(subject, reply, out, err)
	if err != nil {
		code := betasync.ErrorCode(err)
		s.mon.done(ep, time.Since(start), betasync.Status(code), betasync.ErrorMessage(err))
		return
	}
	s.mon.done(ep, time.Since(start), 0, "")
}

// reply sends out, or err with the micro error headers and a JSON body.
func (s *Service) reply(subject, reply string, out any, err error) {
	if reply == "" {
		return // a publish, not a request: nobody to answer
	}
	msg := &nats.Msg{Subject: reply}
	if err != nil {
		code := betasync.ErrorCode(err)
		if code == betasync.EINTERNAL {
			s.cfg.Logger.Error("command failed", "subject", subject, "err", err)
		}
		msg.Header = nats.Header{
			micro.ErrorHeader:     []string{betasync.ErrorMessage(err)},
			micro.ErrorCodeHeader: []string{strconv.Itoa(betasync.Status(code))},
		}
		text := betasync.ErrorMessage(err)
		out = betasync.ErrorReply{Status: betasync.StatusError, Code: code, Message: text, Detail: text}
	}
	data, merr := json.Marshal(out)
	if merr != nil {
		s.reply(subject, reply, nil, betasync.Errorf(betasync.EINTERNAL, "encoding the reply: %v", merr))
		return
	}
	msg.Data = data
	if perr := s.nc.PublishMsg(msg); perr != nil {
		s.cfg.Logger.Warn("command reply failed", "subject", subject, "err", perr)
	}
}

// endpoints are the commands, one per subject: each decodes its payload
// and calls the betasync.Commands method. Replies are the methods' results,
// encoded as JSON.
var endpoints = []struct {
	name, subject string
	serve         serveFunc
}{
	{"reload", SubjectReload, func(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
		if err := decode(p, nil); err != nil {
			return nil, err
		}
		return cmd.Reload(ctx)
	}},
	{"schedule_set", SubjectScheduleSet, func(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
		var in scheduleSetPayload
		if err := decode(p, &in); err != nil {
			return nil, err
		}
		h, err := in.interval()
		if err != nil {
			return nil, err
		}
		return cmd.SetSchedule(ctx, h)
	}},
	{"schedule_cancel", SubjectScheduleCancel, func(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
		if err := decode(p, nil); err != nil {
			return nil, err
		}
		return cmd.CancelSchedule(ctx)
	}},
	{"schedule_status", SubjectScheduleStatus, func(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
		if err := decode(p, nil); err != nil {
			return nil, err
		}
		return cmd.Status(ctx)
	}},
	{"history", SubjectHistory, serveHistory},
	{"history_get", SubjectHistoryGet, serveHistoryGet},
	{"rollback", SubjectRollback, serveRollback},
	{"overrides_set", SubjectOverrideSet, serveOverrideSet},
	{"overrides_delete", SubjectOverrideDelete, serveOverrideDelete},
	{"overrides_list", SubjectOverrideList, serveOverrideList},
	{"fleet", SubjectFleet, serveFleet}, // fleet.go
}
