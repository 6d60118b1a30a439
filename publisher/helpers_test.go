package publisher_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/worker"
)

var docUpstream = mustRead("../testdata/litellm_upstream.json")

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return b
}

// upstream is a local mapping source that counts requests; its handler can
// be swapped while it runs.
type upstream struct {
	*httptest.Server
	hits    atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Set(h)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		(*u.handler.Load())(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) Set(h http.HandlerFunc) { u.handler.Store(&h) }
func (u *upstream) Hits() int              { return int(u.hits.Load()) }

func serve(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}
}

// stack is a worker served as the micro service on a real server, and a
// client on its own connection.
type stack struct {
	srv    *natstest.Server
	up     *upstream
	store  *kv.Store
	worker *worker.Worker
	svc    *publisher.Service
	client *publisher.Client
	nc     *nats.Conn // the client's connection, for raw requests
}

func newStack(t *testing.T, h http.HandlerFunc) *stack {
	t.Helper()
	srv := natstest.Start(t)
	up := newUpstream(t, h)
	wnc, js := srv.JetStream(t)
	st, err := kv.Ensure(t.Context(), js, kv.Config{LockTTL: time.Second})
	require.NoError(t, err)
	w, err := worker.New(worker.Config{ReplicaID: "r1", URL: up.URL, FetchTimeout: 5 * time.Second}, worker.Deps{
		Mappings:  st.Mappings,
		Schedules: st.Schedules,
		Lease:     st.Lease,
		Announce: func(ctx context.Context, env betasync.Envelope) error {
			return publisher.Announce(ctx, wnc, env)
		},
	})
	require.NoError(t, err)
	svc := serveOn(t, wnc, w, "r1")
	nc := srv.Connect(t)
	return &stack{srv: srv, up: up, store: st, worker: w, svc: svc, client: publisher.NewClient(nc), nc: nc}
}

// serveOn runs the service for h on nc until the test ends.
func serveOn(t *testing.T, nc *nats.Conn, h publisher.Handler, replica string) *publisher.Service {
	t.Helper()
	svc, err := publisher.Serve(nc, h, publisher.ServiceConfig{Version: "1.2.3", ReplicaID: replica})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	return svc
}

// request sends a raw request and waits for the reply.
func request(t *testing.T, nc *nats.Conn, subject string, payload []byte) *nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, payload)
	require.NoError(t, err, "request %s", subject)
	return msg
}

// requireCode asserts err carries code and a message holding every want.
func requireCode(t *testing.T, err error, code string, wants ...string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, betasync.ErrorCode(err), "error: %v", err)
	for _, w := range wants {
		require.Contains(t, betasync.ErrorMessage(err), w)
	}
}
