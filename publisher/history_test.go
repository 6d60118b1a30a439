package publisher_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
)

// actors records who each command said it came from.
type actors struct {
	testbed.Commands
	mu   sync.Mutex
	seen []betasync.Actor
	last uint64
}

func (a *actors) Rollback(ctx context.Context, version uint64) (betasync.RollbackResult, error) {
	actor, _ := betasync.ActorFrom(ctx)
	a.mu.Lock()
	a.seen = append(a.seen, actor)
	a.last = version
	a.mu.Unlock()
	return a.Commands.Rollback(ctx, version)
}

func (a *actors) Seen() []betasync.Actor {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]betasync.Actor(nil), a.seen...)
}

// TestActorHeaders: the client sends its context's actor as headers, the
// service puts it back into the command's context, and a request without
// them is "nats".
func TestActorHeaders(t *testing.T) {
	srv := natstest.Start(t)
	cmds := &actors{}
	testbed.ServeCommands(t, srv.Connect(t), cmds, "r1")
	nc := srv.Connect(t)
	client := publisher.NewClient(nc)

	ctx := betasync.WithActor(t.Context(), betasync.Actor{Name: "ops", Addr: "192.0.2.1:4444"})
	res, err := client.Rollback(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), res.RolledBackFrom)
	_, err = client.Rollback(t.Context(), 8)
	require.NoError(t, err)
	msg := testbed.Request(t, nc, publisher.SubjectRollback, []byte(`{"version": "9"}`))
	assert.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "%s", msg.Data)

	assert.Equal(t, []betasync.Actor{
		{Name: "ops", Addr: "192.0.2.1:4444"},
		{Name: publisher.ActorNATS},
		{Name: publisher.ActorNATS},
	}, cmds.Seen())
}

// TestHistoryPayloads: bad limits and versions are refused before the
// command runs, with the HTTP API's statuses.
func TestHistoryPayloads(t *testing.T) {
	srv := natstest.Start(t)
	cmds := &testbed.Commands{}
	testbed.ServeCommands(t, srv.Connect(t), cmds, "r1")
	nc := srv.Connect(t)
	tests := []struct {
		subject, payload string
		status           int
	}{
		{publisher.SubjectHistory, `{"limit": "x"}`, http.StatusUnprocessableEntity},
		{publisher.SubjectHistory, `{"limit": -1}`, http.StatusBadRequest},
		{publisher.SubjectHistoryGet, `{}`, http.StatusUnprocessableEntity},
		{publisher.SubjectHistoryGet, `{"version": 0}`, http.StatusBadRequest},
		{publisher.SubjectRollback, `{"version": null}`, http.StatusUnprocessableEntity},
		{publisher.SubjectRollback, `{"version": -3}`, http.StatusUnprocessableEntity},
		{publisher.SubjectRollback, `{"version": 0}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.subject+" "+tt.payload, func(t *testing.T) {
			msg := testbed.Request(t, nc, tt.subject, []byte(tt.payload))
			errorBody(t, msg, tt.status)
		})
	}
	assert.Zero(t, cmds.Calls.Load(), "no command ran")

	for _, subject := range []string{publisher.SubjectHistory} {
		for _, payload := range []string{"", "{}", `{"limit": 3}`, `{"limit": "3"}`} {
			msg := testbed.Request(t, nc, subject, []byte(payload))
			assert.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "%s with %q: %s", subject, payload, msg.Data)
		}
	}
}
