package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
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
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/kv"
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
	docUpstream = mustRead("../testdata/litellm_upstream.json")
	docSmall    = []byte(`{"anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"}, "bedrock": {"context-1m-2025-08-07": null}}`)
	docOther    = []byte(`{"vertex_ai": {"context-1m-2025-08-07": "context-1m-2025-08-07"}}`)
)

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return b
}

func hashOf(t *testing.T, doc []byte) string {
	t.Helper()
	m, err := betasync.Parse(doc)
	require.NoError(t, err)
	return m.Hash()
}

// upstream is a local httptest server standing in for the mapping URL. It
// counts requests and its handler can be swapped while it runs.
type upstream struct {
	*httptest.Server
	hits    atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]

	mu      sync.Mutex
	headers []http.Header // request headers, in order
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
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
func (u *upstream) Set(h http.HandlerFunc) { u.handler.Store(&h) }

// Hits is the number of requests so far.
func (u *upstream) Hits() int { return int(u.hits.Load()) }

// LastHeader returns the headers of the latest request.
func (u *upstream) LastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.headers) == 0 {
		return nil
	}
	return u.headers[len(u.headers)-1]
}

// serve answers every request with doc.
func serve(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}
}

// status answers every request with code.
func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, http.StatusText(code), code)
	}
}

// node is one replica's connection and store on a shared server.
type node struct {
	nc    *nats.Conn
	store *kv.Store
}

// connect dials srv and ensures the buckets with a 1s lease TTL.
func connect(t *testing.T, srv *natstest.Server) node {
	t.Helper()
	nc, js := srv.JetStream(t)
	st, err := kv.Ensure(t.Context(), js, kv.Config{LockTTL: time.Second})
	require.NoError(t, err)
	return node{nc: nc, store: st}
}

// newWorker builds a worker on n; cfg.ReplicaID defaults to "r1".
func newWorker(t *testing.T, n node, cfg worker.Config) *worker.Worker {
	t.Helper()
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = "r1"
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := worker.New(cfg, worker.Deps{
		Mappings:  n.store.Mappings,
		Schedules: n.store.Schedules,
		Lease:     n.store.Lease,
		Announce: func(ctx context.Context, env betasync.Envelope) error {
			return publisher.Announce(ctx, n.nc, env)
		},
	})
	require.NoError(t, err)
	return w
}

// run starts w.Run and returns a function that stops it and waits; the
// function is also registered with t.Cleanup.
func run(t *testing.T, w *worker.Worker) (stop func()) {
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

// updates subscribes to config.updated on its own connection.
type updates struct{ sub *nats.Subscription }

func subscribe(t *testing.T, srv *natstest.Server) updates {
	t.Helper()
	nc := srv.Connect(t)
	sub, err := nc.SubscribeSync(betasync.SubjectConfigUpdated)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return updates{sub: sub}
}

// Next returns the next announced envelope.
func (u updates) Next(t *testing.T) betasync.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg, err := u.sub.NextMsgWithContext(ctx)
	require.NoError(t, err, "waiting for config.updated")
	var env betasync.Envelope
	require.NoError(t, json.Unmarshal(msg.Data, &env))
	return env
}

// Pending is the number of announcements received and not yet read.
func (u updates) Pending(t *testing.T) int {
	t.Helper()
	n, _, err := u.sub.Pending()
	require.NoError(t, err)
	return n
}

// requireCode asserts err carries code and a message holding every want.
func requireCode(t *testing.T, err error, code string, wants ...string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, code, betasync.ErrorCode(err), "error: %v", err)
	for _, w := range wants {
		assert.Contains(t, betasync.ErrorMessage(err), w)
	}
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, cond, 15*time.Second, 5*time.Millisecond, msgAndArgs...)
}

// connectVia dials addr (a proxy in front of a server) and ensures the
// buckets with a 1s lease TTL.
func connectVia(t *testing.T, addr string) node {
	t.Helper()
	nc, err := nats.Connect("nats://" + addr)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := kv.Ensure(t.Context(), js, kv.Config{LockTTL: time.Second})
	require.NoError(t, err)
	return node{nc: nc, store: st}
}

// proxy forwards TCP connections to a server. Stall makes it drop
// everything from then on, in both directions, as a hung server or network
// would: the connections stay open but no request gets an answer.
type proxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Addr is the host:port clients dial.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// Stall stops forwarding for good.
func (p *proxy) Stall() { p.stalled.Store(true) }

func (p *proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		upstream, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, upstream)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(upstream, client) })
		p.wg.Go(func() { p.pipe(client, upstream) })
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// logs captures a worker's log output.
type logs struct{ buf syncbuf.Buffer }

// Logger returns a logger writing to l.
func (l *logs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Contains reports whether any log line holds s.
func (l *logs) Contains(s string) bool { return strings.Contains(l.buf.String(), s) }
