package publisher

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// Command delivery. A request in a queue group goes to one member; if that
// member is stalled (SIGSTOP, a GC pause, a hung host) or dies mid-command,
// a plain request waits out its whole deadline, and a stalled member that
// resumes runs commands long after their callers gave up, out of order. So
// the Client and the Service speak a little more than request-reply, in
// headers that other clients (the nats CLI) simply do not send:
//
//   - Every command carries its caller's deadline (HeaderDeadline) and the
//     time by which a responder must start it (HeaderStartBy). A responder
//     that receives it later drops it unanswered: by then the caller has
//     asked another responder, or given up.
//   - A responder acknowledges a command as soon as it takes it, and sends
//     a heartbeat while it runs (HeaderProgress), so the caller can tell a
//     slow command from a dead responder.
//   - The Client retries on another responder when no acknowledgement came
//     by the start-by time, or when the heartbeats stop, until its deadline.
//
// Deadlines are wall-clock times, so the clocks of API and worker replicas
// must agree to well within AckTimeout (NTP does).
const (
	HeaderDeadline = "Betasync-Deadline" // RFC 3339: the caller's deadline
	HeaderStartBy  = "Betasync-Start-By" // RFC 3339: start it by then, or drop it
	HeaderProgress = "Betasync-Progress" // on a non-final message: "ack" or "working"

	// AckTimeout is how long a responder has to acknowledge a command.
	AckTimeout = 2 * time.Second
	// Heartbeat is how often a responder says it is still working.
	Heartbeat = time.Second
	// silence is how long after the last word from a responder the client
	// tries another.
	silence = 3 * Heartbeat
)

// deliver sends msg (subject, header and data set) until some responder
// answers it, and returns the final reply.
func (c *Client) deliver(ctx context.Context, msg *nats.Msg) (*nats.Msg, error) {
	deadline, _ := ctx.Deadline()
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Reply = inbox
	msg.Header.Set(HeaderDeadline, deadline.UTC().Format(time.RFC3339Nano))
	for {
		startBy := time.Now().Add(AckTimeout)
		msg.Header.Set(HeaderStartBy, startBy.UTC().Format(time.RFC3339Nano))
		if err := c.nc.PublishMsg(msg); err != nil {
			return nil, err
		}
		reply, err := c.await(ctx, sub, startBy)
		if !errors.Is(err, errSilent) {
			return reply, err
		}
		if ctx.Err() != nil {
			return nil, context.DeadlineExceeded
		}
		// The responder went quiet: ask again; another one takes it.
	}
}

// errSilent: the responder did not acknowledge in time, or stopped sending
// heartbeats.
var errSilent = errors.New("publisher: the responder went silent")

// await reads the inbox until the final reply, a no-responders status, the
// responder going silent, or ctx ending. Acknowledgements and heartbeats
// from any attempt count (a slow first responder's final reply is as good
// as any).
func (c *Client) await(ctx context.Context, sub *nats.Subscription, startBy time.Time) (*nats.Msg, error) {
	quietBy := startBy
	for {
		wait, cancel := context.WithDeadline(ctx, quietBy)
		m, err := sub.NextMsgWithContext(wait)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return nil, errSilent
		default:
			return nil, err
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return nil, nats.ErrNoResponders
		}
		if m.Header.Get(HeaderProgress) != "" {
			quietBy = time.Now().Add(silence)
			continue
		}
		return m, nil
	}
}

// admit reads a command's delivery headers. It reports whether to run it
// (false: it came too late: drop it unanswered), and the deadline to run it
// by (zero when the caller sent none, as the nats CLI does).
func admit(h nats.Header, now time.Time) (run bool, deadline time.Time, progress bool) {
	if v := h.Get(HeaderStartBy); v != "" {
		startBy, err := time.Parse(time.RFC3339Nano, v)
		if err == nil && now.After(startBy) {
			return false, time.Time{}, false
		}
		progress = true
	}
	if v := h.Get(HeaderDeadline); v != "" {
		if d, err := time.Parse(time.RFC3339Nano, v); err == nil {
			if now.After(d) {
				return false, time.Time{}, false
			}
			deadline = d
		}
	}
	return true, deadline, progress
}

// progress sends a non-final message to the caller.
func (s *Service) progress(reply, what string) {
	if reply == "" {
		return
	}
	_ = s.nc.PublishMsg(&nats.Msg{Subject: reply, Header: nats.Header{HeaderProgress: []string{what}}})
}

// heartbeat says "working" every Heartbeat until done is closed.
func (s *Service) heartbeat(reply string, done <-chan struct{}) {
	t := time.NewTicker(Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.progress(reply, "working")
		}
	}
}
