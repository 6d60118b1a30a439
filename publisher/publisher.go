// Package publisher is betasync's bus contract over core NATS: it announces
// new mapping versions on config.updated, serves the commands as the NATS
// micro service "betasync", and is the client the HTTP API (and any Go
// program) uses to send those commands.
//
// Nothing here dials, drains or closes a connection: every function takes
// the caller's *nats.Conn.
package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/betasync/betasync"
)

// The bus contract: subjects that the worker, the HTTP API, every pod and
// the nats CLI share.
const (
	// ServiceName is the NATS micro service that answers commands.
	ServiceName = "betasync"

	SubjectReload         = "betasync.reload"
	SubjectScheduleSet    = "betasync.schedule.set"
	SubjectScheduleCancel = "betasync.schedule.cancel"
	SubjectScheduleStatus = "betasync.schedule.status"

	SubjectOverrideSet    = "betasync.overrides.set"
	SubjectOverrideDelete = "betasync.overrides.delete"
	SubjectOverrideList   = "betasync.overrides.list"

	// SubjectConfigUpdated carries every new version, in its wire form
	// (betasync.Snapshot's envelope).
	SubjectConfigUpdated = "config.updated"

	// SubjectConfigCurrent carries the beacon: the lease-holding worker
	// names the stored version there every check interval (Beacon), so a
	// pod that missed an announcement (a leaf node cut off from the hub, a
	// dropped message) reads KV at once rather than at its next resync.
	SubjectConfigCurrent = "config.current"
)

// Beacon is the payload of config.current.
type Beacon struct {
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
}

// PublishBeacon publishes the stored version's number and hash on
// config.current. It does not flush: a lost beacon is replaced by the next.
func PublishBeacon(nc *nats.Conn, version uint64, hash string) error {
	data, err := json.Marshal(Beacon{Version: version, Hash: hash})
	if err != nil {
		return err
	}
	return nc.Publish(SubjectConfigCurrent, data)
}

// Announce publishes snap on config.updated and flushes, so the server has
// it when Announce returns.
func Announce(ctx context.Context, nc *nats.Conn, snap *betasync.Snapshot) error {
	data, err := snap.MarshalJSON() // not json.Marshal, which would scan it once more

	if err != nil {
		return fmt.Errorf("publisher: encoding version %d: %w", snap.Version, err)
	}
	if err := nc.Publish(SubjectConfigUpdated, data); err != nil {
		return fmt.Errorf("publisher: announcing version %d: %w", snap.Version, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("publisher: announcing version %d: %w", snap.Version, err)
	}
	return nil
}

var _ betasync.Commands = (*Client)(nil)

// Client sends commands to whichever worker replica answers. It implements
// betasync.Commands.
type Client struct {
	nc *nats.Conn
}

// NewClient returns a client on nc. Each call's deadline comes from its ctx;
// without one, DefaultTimeout applies.
func NewClient(nc *nats.Conn) *Client { return &Client{nc: nc} }

// DefaultTimeout bounds a command whose context has no deadline. It is
// longer than the worker's default fetch timeout.
const DefaultTimeout = 30 * time.Second

// Reload asks a worker to fetch the mapping now.
func (c *Client) Reload(ctx context.Context) (betasync.ReloadResult, error) {
	var r betasync.ReloadResult
	return r, c.request(ctx, SubjectReload, nil, &r)
}

// SetSchedule asks a worker to reload every hours hours.
func (c *Client) SetSchedule(ctx context.Context, h float64) (betasync.ScheduleResult, error) {
	var r betasync.ScheduleResult
	if err := betasync.ValidateHours(h); err != nil {
		return r, err // NaN and infinities have no JSON form
	}
	payload, err := json.Marshal(scheduleSetPayload{Hours: (*hours)(&h)})
	if err != nil {
		return r, betasync.Errorf(betasync.EINTERNAL, "encoding the schedule: %v", err)
	}
	return r, c.request(ctx, SubjectScheduleSet, payload, &r)
}

// CancelSchedule asks a worker to cancel the schedule.
func (c *Client) CancelSchedule(ctx context.Context) (betasync.CancelResult, error) {
	var r betasync.CancelResult
	return r, c.request(ctx, SubjectScheduleCancel, nil, &r)
}

// Status asks a worker for the shared schedule status.
func (c *Client) Status(ctx context.Context) (betasync.ScheduleStatus, error) {
	var r betasync.ScheduleStatus
	return r, c.request(ctx, SubjectScheduleStatus, nil, &r)
}

func (c *Client) request(ctx context.Context, subject string, payload []byte, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	msg, err := c.deliver(ctx, &nats.Msg{Subject: subject, Data: payload, Header: actorHeader(ctx)})
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return betasync.Errorf(betasync.EUNAVAILABLE, "no betasync worker is answering on %s", subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return betasync.Errorf(betasync.EUNAVAILABLE, "no betasync worker answered %s in time", subject)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return betasync.Errorf(betasync.EUNAVAILABLE, "not connected to NATS")
	case err != nil:
		return betasync.Errorf(betasync.EUNAVAILABLE, "request %s: %v", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return replyError(msg, code)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return betasync.Errorf(betasync.EINTERNAL, "the worker's reply to %s is not valid: %v", subject, err)
	}
	return nil
}

func replyError(msg *nats.Msg, code string) error {
	status, err := strconv.Atoi(code)
	if err != nil {
		status = 500
	}
	var body betasync.ErrorReply
	if json.Unmarshal(msg.Data, &body) != nil || body.Message == "" {
		body.Message = msg.Header.Get(micro.ErrorHeader)
	}
	if body.Code == "" {
		body.Code = betasync.CodeForStatus(status)
	}
	return &betasync.Error{Code: body.Code, Message: body.Message}
}
