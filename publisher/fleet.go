package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/betasync/betasync"
)

// The fleet view's part of the bus contract.
const (
	// SubjectFleet is the command that collects the fleet view.
	SubjectFleet = "betasync.fleet"

	// PodServiceName is the NATS micro service every subscriber registers
	// (one instance per pod, metadata "pod" = its id), so that
	// `nats micro ls` and `nats micro info betasync_pod` list the pods.
	PodServiceName = "betasync_pod"
	// SubjectPodStatus is its one endpoint, "status", without a queue
	// group: a request published there is answered by every pod, with a
	// betasync.PodStatus.
	SubjectPodStatus = "betasync.pod.status"
)

// Pending limits of a fleet collection's inbox: far above what 1,000 pods
// send (about 300 bytes each), so that no answer is dropped as a slow
// consumer while the collector decodes.
const (
	fleetPendingMsgs  = 1 << 16
	fleetPendingBytes = 64 << 20
)

// Fleet publishes one request on betasync.pod.status and collects every
// pod's answer until window ends (or ctx does, whichever is first), one
// answer per pod id. An answer that does not decode, or has no pod id, is
// skipped. No pods is not an error: the result is empty (at once when
// nothing subscribes to betasync.pod.status).
func Fleet(ctx context.Context, nc *nats.Conn, window time.Duration) ([]betasync.PodStatus, error) {
	if window <= 0 {
		window = betasync.DefaultFleetWindow
	}
	if !nc.IsConnected() {
		return nil, betasync.Errorf(betasync.EUNAVAILABLE, "not connected to NATS (%s)", nc.Status())
	}
	inbox := nc.NewInbox()
	// A synchronous subscription: answers wait in the client's pending
	// buffer, and are decoded here, not on the connection's callback.
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, betasync.Errorf(betasync.EUNAVAILABLE, "subscribing to the fleet inbox: %v", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(fleetPendingMsgs, fleetPendingBytes); err != nil {
		return nil, betasync.Errorf(betasync.EINTERNAL, "sizing the fleet inbox: %v", err)
	}
	if err := nc.PublishRequest(SubjectPodStatus, inbox, nil); err != nil {
		return nil, betasync.Errorf(betasync.EUNAVAILABLE, "asking the pods on %s: %v", SubjectPodStatus, err)
	}
	wctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	seen := make(map[string]int) // pod id -> index in pods
	var pods []betasync.PodStatus
	for {
		msg, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, betasync.Errorf(betasync.EUNAVAILABLE, "fleet query cancelled")
			}
			if wctx.Err() != nil {
				return pods, nil // the window (or the caller's deadline) ended
			}
			if errors.Is(err, nats.ErrNoResponders) {
				return pods, nil // nothing subscribes: no pod, said at once
			}
			return nil, betasync.Errorf(betasync.EUNAVAILABLE, "collecting pod answers: %v", err)
		}
		var p betasync.PodStatus
		if json.Unmarshal(msg.Data, &p) != nil || p.Pod == "" {
			continue
		}
		if i, ok := seen[p.Pod]; ok {
			if p.Version > pods[i].Version {
				pods[i] = p
			}
			continue
		}
		seen[p.Pod] = len(pods)
		pods = append(pods, p)
	}
}

// Fleet asks a worker for the fleet view.
func (c *Client) Fleet(ctx context.Context) (betasync.FleetView, error) {
	var r betasync.FleetView
	return r, c.request(ctx, SubjectFleet, nil, &r)
}

func serveFleet(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
	if err := decode(p, nil); err != nil {
		return nil, err
	}
	return cmd.Fleet(ctx)
}
