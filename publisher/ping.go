package publisher

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/betasync/betasync"
)

// Ping checks that NATS is connected and that some worker replica answers
// the micro service's PING.
func (c *Client) Ping(ctx context.Context) error {
	if !c.nc.IsConnected() {
		return betasync.Errorf(betasync.EUNAVAILABLE, "not connected to NATS (%s)", c.nc.Status())
	}
	subject, err := micro.ControlSubject(micro.PingVerb, ServiceName, "")
	if err != nil {
		return betasync.Errorf(betasync.EINTERNAL, "ping subject: %v", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	if _, err := c.nc.RequestWithContext(ctx, subject, nil); err != nil {
		return betasync.Errorf(betasync.EUNAVAILABLE, "no betasync worker answers: %v", err)
	}
	return nil
}
