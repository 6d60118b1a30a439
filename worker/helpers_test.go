package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/worker"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock shared by the workers of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Documents served by the test upstreams.
var (
	// docUpstream is an upstream-shaped document; it differs from the
	// embedded default.
	docUpstream = testbed.DocUpstream
	docSmall    = []byte(`{"anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"}, "bedrock": {"context-1m-2025-08-07": null}}`)
	docOther    = []byte(`{"vertex_ai": {"context-1m-2025-08-07": "context-1m-2025-08-07"}}`)
)

func hashOf(t *testing.T, doc []byte) string {
	t.Helper()
	m, err := betasync.Parse(doc)
	require.NoError(t, err)
	return m.Hash()
}

// The shared fixtures, under the names these tests use.
var (
	newUpstream = testbed.NewUpstream
	serve       = testbed.Serve
	status      = testbed.Status
	connect     = testbed.Connect
	run         = testbed.Run
	requireCode = testbed.RequireCode
	newProxy    = testbed.NewProxy
)

type node = testbed.Node

// connectVia dials addr, a proxy in front of a server.
func connectVia(t *testing.T, addr string) node { return testbed.ConnectURL(t, "nats://"+addr) }

// newWorker builds a worker on n; cfg.ReplicaID defaults to "r1".
func newWorker(t *testing.T, n node, cfg worker.Config) *worker.Worker {
	t.Helper()
	return testbed.NewWorker(t, n, cfg, worker.Deps{})
}

// updates subscribes to config.updated on its own connection.
type updates struct{ sub *nats.Subscription }

func subscribe(t *testing.T, srv *natstest.Server) updates {
	t.Helper()
	nc := srv.Connect(t)
	sub, err := nc.SubscribeSync(publisher.SubjectConfigUpdated)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return updates{sub: sub}
}

// Next returns the next announced version.
func (u updates) Next(t *testing.T) *betasync.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg, err := u.sub.NextMsgWithContext(ctx)
	require.NoError(t, err, "waiting for config.updated")
	env := new(betasync.Snapshot)
	require.NoError(t, json.Unmarshal(msg.Data, env), "the announced version validates")
	return env
}

// Pending is the number of announcements received and not yet read.
func (u updates) Pending(t *testing.T) int {
	t.Helper()
	n, _, err := u.sub.Pending()
	require.NoError(t, err)
	return n
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, cond, 15*time.Second, 5*time.Millisecond, msgAndArgs...)
}

// logs captures a worker's log output.
type logs struct{ buf syncbuf.Buffer }

// Logger returns a logger writing to l.
func (l *logs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Contains reports whether any log line holds s.
func (l *logs) Contains(s string) bool { return strings.Contains(l.buf.String(), s) }
