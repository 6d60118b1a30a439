// Package testbed is the in-process assembly that the packages' tests share:
// a mapping upstream on httptest, replicas (a connection and the KV
// buckets) on a real embedded NATS server, workers, and the command service
// with a client. Nothing here is mocked: every part is the real one.
package testbed

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/worker"
)

// Testdata reads a file from the repository's testdata directory.
func Testdata(name string) []byte {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "testdata", name))
	if err != nil {
		panic(err)
	}
	return b
}

// DocUpstream is an upstream-shaped document (LiteLLM's file); it differs
// from the embedded default.
var DocUpstream = Testdata("litellm_upstream.json")

// Upstream is a local mapping source. It counts requests, records their
// headers, and its handler can be swapped while it runs.
type Upstream struct {
	*httptest.Server
	hits    atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]

	mu      sync.Mutex
	headers []http.Header // request headers, in order
}

// NewUpstream starts an upstream answering with h until the test ends.
func NewUpstream(t testing.TB, h http.HandlerFunc) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.Set(h)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		(*u.handler.Load())(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// Set replaces the handler.
func (u *Upstream) Set(h http.HandlerFunc) { u.handler.Store(&h) }

// Hits is the number of requests so far.
func (u *Upstream) Hits() int { return int(u.hits.Load()) }

// LastHeader returns the headers of the latest request.
func (u *Upstream) LastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.headers) == 0 {
		return nil
	}
	return u.headers[len(u.headers)-1]
}

// Serve answers every request with doc.
func Serve(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}
}

// Status answers every request with code.
func Status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, http.StatusText(code), code)
	}
}

// RequireCode asserts that err carries code and a message holding every
// want.
func RequireCode(t testing.TB, err error, code string, wants ...string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, betasync.ErrorCode(err), "error: %v", err)
	for _, w := range wants {
		assert.Contains(t, betasync.ErrorMessage(err), w)
	}
}

// LockTTL is the lease TTL of every replica Connect makes: short, so
// take-overs happen within a test.
const LockTTL = time.Second

// Node is one replica's connection and buckets.
type Node struct {
	NC    *nats.Conn
	Store *kv.Store
}

// Connect dials srv and ensures the buckets.
func Connect(t testing.TB, srv *natstest.Server) Node {
	t.Helper()
	return ConnectURL(t, srv.ClientURL())
}

// ConnectURL dials url (a server, or a proxy in front of one) and ensures
// the buckets.
func ConnectURL(t testing.TB, url string) Node {
	t.Helper()
	return ConnectConfig(t, url, kv.Config{LockTTL: LockTTL})
}

// ConnectConfig dials url and ensures the buckets with cfg (a signing
// replica, say).
func ConnectConfig(t testing.TB, url string, cfg kv.Config) Node {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := kv.Ensure(t.Context(), js, cfg)
	require.NoError(t, err)
	return Node{NC: nc, Store: st}
}

// NewWorker builds a worker on n that announces on n's connection;
// cfg.ReplicaID defaults to "r1", and with -v it logs to the test output.
func NewWorker(t testing.TB, n Node, cfg worker.Config, deps worker.Deps) *worker.Worker {
	t.Helper()
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = "r1"
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	deps.Store = n.Store
	if deps.Announce == nil {
		deps.Announce = func(ctx context.Context, snap *betasync.Snapshot) error {
			return publisher.Announce(ctx, n.NC, snap)
		}
	}
	w, err := worker.New(cfg, deps)
	require.NoError(t, err)
	return w
}

// Run starts w.Run and returns a function that stops it and waits; the
// function is also registered with t.Cleanup, so the lease is released
// before the connection and the server go.
func Run(t testing.TB, w *worker.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// ServeCommands serves cmd as the micro service on nc until the test ends.
func ServeCommands(t testing.TB, nc *nats.Conn, cmd betasync.Commands, replica string) *publisher.Service {
	t.Helper()
	svc, err := publisher.Serve(nc, cmd, publisher.ServiceConfig{Version: "1.2.3", ReplicaID: replica, Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, svc.Stop()) })
	return svc
}

// Stack is one worker replica on a real server, serving the commands, with
// an upstream and a client on its own connection.
type Stack struct {
	Server   *natstest.Server
	Upstream *Upstream
	Node                        // the worker's connection and buckets
	Worker   *worker.Worker     // not running: call Run for the lease and the schedule
	Service  *publisher.Service // serving Worker as replica "r1"
	NC       *nats.Conn         // the client's connection, for raw requests
	Client   *publisher.Client
}

// NewStack starts a stack whose upstream answers with h. cfg's URL
// defaults to the upstream, its FetchTimeout to 5s.
func NewStack(t testing.TB, h http.HandlerFunc, cfg worker.Config, deps worker.Deps) *Stack {
	t.Helper()
	s := &Stack{Server: natstest.Start(t), Upstream: NewUpstream(t, h)}
	s.Node = Connect(t, s.Server)
	if cfg.URL == "" {
		cfg.URL = s.Upstream.URL
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	s.Worker = NewWorker(t, s.Node, cfg, deps)
	s.Service = ServeCommands(t, s.Node.NC, s.Worker, "r1")
	s.NC = s.Server.Connect(t)
	s.Client = publisher.NewClient(s.NC)
	return s
}

// Request sends a raw request and waits for the reply.
func Request(t testing.TB, nc *nats.Conn, subject string, payload []byte) *nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, payload)
	require.NoError(t, err, "request %s", subject)
	return msg
}
