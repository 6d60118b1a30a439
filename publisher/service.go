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

// Service is the running micro service.
type Service struct {
	nc  *nats.Conn
	svc micro.Service
	cmd betasync.Commands
	cfg ServiceConfig
	sem chan struct{}

	errs endpointErrors // failed replies by endpoint, for the micro stats

	mu      sync.Mutex
	stopped bool         // once set, no command starts
	dropped atomic.Int64 // commands that came too late

	base  context.Context // every command's; cancelled when a bounded shutdown runs out
	abort context.CancelFunc
	wg    sync.WaitGroup

	stop   sync.Once
	stopEr error
}

// Serve serves cmd as the betasync micro service on nc, in the default queue
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
	svc, err := micro.AddService(nc, micro.Config{
		Name:    ServiceName,
		Version: cfg.Version,
		// `nats micro ls` shows the description, not the metadata: it
		// names the replica, so operators can tell instances apart.
		Description:  "betasync replica " + cfg.ReplicaID + ": reload and schedule the anthropic-beta mapping",
		Metadata:     map[string]string{"replica": cfg.ReplicaID},
		StatsHandler: s.errs.stats,
	})
	if err != nil {
		return nil, err
	}
	s.svc = svc
	for _, e := range endpoints {
		if err := svc.AddEndpoint(e.name, s.async(e.name, e.serve), micro.WithEndpointSubject(e.subject)); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	if nc.IsConnected() {
		if err := nc.Flush(); err != nil {
			// The subscriptions are sent again on reconnect.
			cfg.Logger.Warn("flushing the service subscriptions", "err", err)
		}
	}
	return s, nil
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
		s.stopEr = s.svc.Stop()
		// micro drains the endpoint subscriptions in the background: flush,
		// so the server has dropped them and routes new requests to other
		// replicas, then refuse whatever the drain still delivers.
		if s.nc.IsConnected() {
			_ = s.nc.Flush()
		}
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s.stopEr
}

// Dropped is the number of commands dropped because they arrived after
// their caller had moved on (see HeaderStartBy).
func (s *Service) Dropped() int64 { return s.dropped.Load() }

// Info returns the micro service's description.
func (s *Service) Info() micro.Info { return s.svc.Info() }

// async answers each request on its own goroutine. Once the micro handler
// has returned, the library reads the request's state to count errors, so
// replies sent later go straight to the reply subject on the connection
// rather than through micro.Request.
//
// Errors are counted twice over: a command refused at once (this replica
// is stopping, or has too many in flight) is answered through req.Error, so
// micro counts it in num_errors; every failed reply, whenever it is sent,
// is counted in the endpoint's stats data ({"errors", "last_error"}: see
// endpointErrors), since micro has read the request's state by then.
func (s *Service) async(name string, serve func(ctx context.Context, cmd betasync.Commands, payload []byte) (any, error)) micro.HandlerFunc {
	return func(req micro.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopped {
			s.refuse(name, req, betasync.Errorf(betasync.EUNAVAILABLE, "replica %s is stopping", s.cfg.ReplicaID))
			return
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.refuse(name, req, betasync.Errorf(betasync.EUNAVAILABLE, "too many commands in flight on replica %s", s.cfg.ReplicaID))
			return
		}
		subject, reply, payload, headers := req.Subject(), req.Reply(), req.Data(), req.Headers()
		now := time.Now()
		run, deadline, progress := admit(headers, now)
		if !run {
			<-s.sem
			s.dropped.Add(1)
			s.cfg.Logger.Warn("dropped a command that arrived after its caller moved on", "subject", subject)
			return
		}
		if progress {
			s.progress(reply, "ack")
		}
		if !deadline.IsZero() {
			// Leave the reply time to reach the caller before it gives up.
			deadline = deadline.Add(-replyMargin)
		}
		if deadline.IsZero() || deadline.After(now.Add(s.cfg.Timeout)) {
			deadline = now.Add(s.cfg.Timeout)
		}
		s.wg.Go(func() {
			defer func() { <-s.sem }()
			ctx, cancel := context.WithDeadline(withActor(s.base, headers), deadline)
			defer cancel()
			done := make(chan struct{})
			if progress {
				s.wg.Go(func() { s.heartbeat(reply, done) })
			}
			out, err := serve(ctx, s.cmd, payload)
			close(done)
			switch {
			case err == nil:
			case s.base.Err() != nil && (betasync.ErrorCode(err) == betasync.EINTERNAL || betasync.ErrorCode(err) == betasync.EUNAVAILABLE):
				err = betasync.Errorf(betasync.EUNAVAILABLE, "replica %s stopped before the command finished; it may or may not have taken effect", s.cfg.ReplicaID)
			case ctx.Err() != nil && betasync.ErrorCode(err) == betasync.EINTERNAL:
				err = betasync.Errorf(betasync.EUNAVAILABLE, "%s did not finish in time on replica %s", subject, s.cfg.ReplicaID)
			}
			if err != nil {
				s.errs.add(name, err)
			}
			s.reply(subject, reply, out, err)
		})
	}
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
	serve         func(ctx context.Context, cmd betasync.Commands, payload []byte) (any, error)
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

// refuse answers a command it will not run through req.Error, so that micro
// counts it (num_errors), with the same body as any failed command.
func (s *Service) refuse(name string, req micro.Request, err error) {
	s.errs.add(name, err)
	code := betasync.ErrorCode(err)
	text := betasync.ErrorMessage(err)
	body, _ := json.Marshal(betasync.ErrorReply{Status: betasync.StatusError, Code: code, Message: text, Detail: text})
	if rerr := req.Error(strconv.Itoa(betasync.Status(code)), text, body); rerr != nil {
		s.cfg.Logger.Warn("command reply failed", "subject", req.Subject(), "err", rerr)
	}
}

// endpointErrors counts failed replies by endpoint.
type endpointErrors struct {
	mu   sync.Mutex
	byEP map[string]*EndpointErrors
}

// EndpointErrors is the data of each endpoint in the micro stats (`nats
// micro stats betasync --json`, field data): every failed reply this
// replica sent on the endpoint, and the last one's message.
type EndpointErrors struct {
	Errors    int    `json:"errors"`
	LastError string `json:"last_error,omitempty"`
}

func (e *endpointErrors) add(name string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byEP == nil {
		e.byEP = map[string]*EndpointErrors{}
	}
	c := e.byEP[name]
	if c == nil {
		c = &EndpointErrors{}
		e.byEP[name] = c
	}
	c.Errors++
	c.LastError = betasync.ErrorMessage(err)
}

func (e *endpointErrors) stats(ep *micro.Endpoint) any {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.byEP[ep.Name]; c != nil {
		return *c
	}
	return EndpointErrors{}
}
