package subscriber_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
)

// waitFor bounds every wait for something the bus must deliver. It is a
// deadline for a hung test, not a measurement.
const waitFor = 5 * time.Second

// busCtx bounds one call on the bus; FlushWithContext needs a deadline,
// which t.Context() does not have.
func busCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// doc returns a small valid mapping whose hash differs for every n.
func doc(t testing.TB, n int) *betasync.Mapping {
	t.Helper()
	m, err := betasync.Parse(fmt.Appendf(nil, `{"anthropic": {"a-%d": "a-%d"}}`, n, n))
	require.NoError(t, err)
	return m
}

// envelope wraps m as announced for version.
func envelope(m *betasync.Mapping, version uint64) *betasync.Snapshot {
	env := betasync.NewSnapshot(m, betasync.SourceRemote, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	env.Version = version
	return env
}

// tamper returns env's wire form with edit applied to its fields.
func tamper(t *testing.T, env *betasync.Snapshot, edit func(fields map[string]any)) []byte {
	t.Helper()
	b, err := json.Marshal(env)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	edit(fields)
	b, err = json.Marshal(fields)
	require.NoError(t, err)
	return b
}

// ensure creates the buckets on the server behind js.
func ensure(t *testing.T, js jetstream.JetStream) *kv.Mappings {
	t.Helper()
	store, err := kv.Ensure(t.Context(), js, kv.Config{})
	require.NoError(t, err)
	return store.Mappings
}

// put stores m as the version after expected and returns the new version.
func put(t *testing.T, store *kv.Mappings, m *betasync.Mapping, expected uint64) uint64 {
	t.Helper()
	v, err := store.Put(t.Context(), envelope(m, 0), expected)
	require.NoError(t, err)
	return v
}

// publish sends raw bytes on subject and flushes.
func publish(t *testing.T, nc *nats.Conn, subject string, data []byte) {
	t.Helper()
	require.NoError(t, nc.Publish(subject, data))
	require.NoError(t, nc.FlushWithContext(busCtx(t)))
}

// announce publishes m as version on config.updated.
func announce(t *testing.T, nc *nats.Conn, m *betasync.Mapping, version uint64) {
	t.Helper()
	require.NoError(t, publisher.Announce(busCtx(t), nc, envelope(m, version)))
}

// pod is a subscriber whose swaps the test observes through updates.
type pod struct {
	*subscriber.Subscriber
	updates chan *betasync.Snapshot
}

// newPod starts a subscriber on nc, closed by t.Cleanup.
func newPod(t *testing.T, nc *nats.Conn, opts ...subscriber.Option) *pod {
	t.Helper()
	updates := make(chan *betasync.Snapshot, 1024)
	opts = append(opts, subscriber.WithOnUpdate(func(s *betasync.Snapshot) {
		select {
		case updates <- s:
		default: // never block the subscriber; no test swaps this often
		}
	}))
	sub, err := subscriber.New(nc, opts...)
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	return &pod{Subscriber: sub, updates: updates}
}

// waitVersion waits until the pod swaps to version and returns that swap.
func (p *pod) waitVersion(t *testing.T, version uint64) *betasync.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	for {
		select {
		case s := <-p.updates:
			if s.Version == version {
				return s
			}
		case <-ctx.Done():
			require.FailNow(t, "the pod did not swap in time", "want version %d, holding %d", version, p.Current().Version)
		}
	}
}

func TestNewServesTheDefaultBeforeAnyKV(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)

	sub, err := subscriber.New(nc)
	require.NoError(t, err)

	cur := sub.Current()
	require.NotNil(t, cur)
	assert.Same(t, betasync.Default(), cur.Mapping)
	assert.Zero(t, cur.Version)
	assert.Equal(t, betasync.SourceEmbedded, cur.Source)
	assert.Equal(t, betasync.Default().Hash(), cur.Hash())
	assert.True(t, cur.FetchedAt.IsZero())
	assert.False(t, cur.AppliedAt.IsZero())
	assert.False(t, sub.Ready())

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, sub.WaitReady(ctx), context.DeadlineExceeded)

	sub.Close()
	sub.Close() // idempotent
	assert.True(t, nc.IsConnected(), "Close must not touch the caller's connection")
	assert.NoError(t, nc.FlushWithContext(busCtx(t)), "the caller's connection still works after Close")
	assert.Same(t, cur, sub.Current(), "Current still answers after Close")
}

func TestCloseStopsApplying(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	p := newPod(t, nc)

	announce(t, nc, doc(t, 1), 1)
	p.waitVersion(t, 1)
	p.Close()

	announce(t, nc, doc(t, 2), 2)
	require.NoError(t, nc.FlushWithContext(busCtx(t)))
	assert.Equal(t, uint64(1), p.Current().Version, "no swap after Close")
	assert.True(t, nc.IsConnected())
}

func TestCloseAfterTheCallerClosedTheConnection(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	p := newPod(t, nc)
	announce(t, nc, doc(t, 1), 1)
	p.waitVersion(t, 1)

	nc.Close()
	p.Close() // returns: nothing waits on the dead connection
	assert.Equal(t, uint64(1), p.Current().Version, "the last version is still served")
}

func TestLateJoinerAppliesTheStoredVersion(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	store := ensure(t, js)
	want := doc(t, 1)
	version := put(t, store, want, 0)

	p := newPod(t, srv.Connect(t))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, p.WaitReady(ctx))

	cur := p.Current()
	assert.True(t, p.Ready())
	assert.Equal(t, version, cur.Version)
	assert.Equal(t, want.Hash(), cur.Hash())
	assert.Equal(t, betasync.SourceRemote, cur.Source)
	assert.Equal(t, []string{"a-1"}, cur.Betas("anthropic", "a-1,a-2"))
	assert.Equal(t, uint64(1), p.Stats().Applied)
	assert.Zero(t, p.Stats().Invalid)
}

func TestEvents(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	p := newPod(t, nc)

	// A good version to protect.
	announce(t, nc, doc(t, 5), 5)
	got := p.waitVersion(t, 5)
	assert.Equal(t, doc(t, 5).Hash(), got.Hash())
	assert.True(t, p.Ready())

	mustJSON := func(env *betasync.Snapshot) []byte {
		b, err := json.Marshal(env)
		require.NoError(t, err)
		return b
	}
	// Invalid events claim a version newer than any applied here, so they
	// are validated rather than dismissed as stale.
	const newer = 10_000
	withField := func(version uint64, key string, value any) []byte {
		return tamper(t, envelope(doc(t, 7), version), func(f map[string]any) { f[key] = value })
	}
	mismatch := withField(newer, "hash", doc(t, 8).Hash())
	noCore := withField(newer, "config", json.RawMessage(`{"not-a-core-provider": {"a-7": "a-7"}}`))
	notObject := withField(newer, "config", json.RawMessage(`"a string, not a document"`))
	badName := withField(newer, "config", json.RawMessage(`{"anthropic": {"a-7": "a,7"}}`))

	tests := []struct {
		name    string
		data    []byte
		stale   uint64 // how much each counter must grow
		invalid uint64
	}{
		{name: "older version", data: mustJSON(envelope(doc(t, 4), 4)), stale: 1},
		{name: "duplicate version", data: mustJSON(envelope(doc(t, 5), 5)), stale: 1},
		{name: "same version other content", data: mustJSON(envelope(doc(t, 6), 5)), stale: 1},
		{name: "version zero", data: mustJSON(envelope(doc(t, 6), 0)), stale: 1},
		{name: "garbage bytes", data: []byte("\x00\xffnot json"), invalid: 1},
		{name: "empty payload", data: nil, invalid: 1},
		{name: "JSON but not an envelope", data: []byte(`[1, 2, 3]`), invalid: 1},
		{name: "config without a core provider", data: noCore, invalid: 1},
		{name: "config not an object", data: notObject, invalid: 1},
		{name: "config with a comma in a name", data: badName, invalid: 1},
		{name: "hash mismatch", data: mismatch, invalid: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, good := p.Stats(), p.Current()
			publish(t, nc, publisher.SubjectConfigUpdated, tt.data)
			assert.Same(t, good, p.Current())

			// Events are applied in order on one goroutine: once a later
			// valid version is in, the bad one has been handled.
			next := uint64(100 + i)
			announce(t, nc, doc(t, 100+i), next)
			got := p.waitVersion(t, next)

			after := p.Stats()
			assert.Equal(t, before.Stale+tt.stale, after.Stale, "stale")
			assert.Equal(t, before.Invalid+tt.invalid, after.Invalid, "invalid")
			assert.Equal(t, before.Applied+1, after.Applied, "only the later valid version was applied")
			assert.Equal(t, doc(t, 100+i).Hash(), got.Hash())
		})
	}

	// A bad event never replaces a good mapping, even one claiming a much
	// newer version: had it moved the version to 1000, 999 would be stale.
	invalid := p.Stats().Invalid
	require.Less(t, p.Current().Version, uint64(1000))
	publish(t, nc, publisher.SubjectConfigUpdated, withField(1000, "hash", doc(t, 8).Hash()))
	announce(t, nc, doc(t, 999), 999)
	got = p.waitVersion(t, 999)
	assert.Equal(t, doc(t, 999).Hash(), got.Hash())
	assert.Equal(t, invalid+1, p.Stats().Invalid)
}

// TestEventsDoNotWaitForKV: while KV has nothing to give, or cannot be
// read at all, events still apply at once; the failing read retries for
// seconds, and had it held up the events its warning would come first.
func TestEventsDoNotWaitForKV(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *nats.Conn
	}{
		{name: "no bucket yet", start: func(t *testing.T) *nats.Conn { return natstest.Start(t).Connect(t) }},
		{name: "empty bucket", start: func(t *testing.T) *nats.Conn {
			nc, js := natstest.Start(t).JetStream(t)
			ensure(t, js)
			return nc
		}},
		{name: "JetStream unavailable", start: func(t *testing.T) *nats.Conn {
			srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
			require.NoError(t, err)
			srv.Start()
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
			require.True(t, srv.ReadyForConnections(waitFor))
			nc, err := nats.Connect(srv.ClientURL())
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			return nc
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := tt.start(t)
			var logs syncbuf.Buffer
			p := newPod(t, nc, subscriber.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

			announce(t, nc, doc(t, 1), 1)
			p.waitVersion(t, 1)
			assert.NotContains(t, logs.String(), "reading the mapping from KV failed")
			assert.True(t, p.Ready())
		})
	}
}

func TestReconnectCatchesUpFromKV(t *testing.T) {
	srv := natstest.Start(t)
	listen, dir := srv.Listen(), srv.StoreDir

	gate := &dialGate{}
	gate.open.Store(true)
	podConn := srv.Connect(t,
		nats.ReconnectWait(50*time.Millisecond),
		nats.MaxReconnects(-1),
		nats.SetCustomDialer(gate),
	)
	p := newPod(t, podConn)

	nc, js := srv.JetStream(t)
	store := ensure(t, js)
	v1 := put(t, store, doc(t, 1), 0)
	announce(t, nc, doc(t, 1), v1)
	p.waitVersion(t, v1)

	// The pod may not reconnect before v2 is stored, or its re-read could
	// find v1 and it would wait for the safety interval (30s) instead.
	gate.open.Store(false)
	srv.Stop()

	restarted := time.Now()
	srv = natstest.StartAt(t, listen, dir)
	_, js = srv.JetStream(t)
	store, err := kv.OpenMappings(t.Context(), js, kv.BucketConfig)
	require.NoError(t, err)
	v2 := put(t, store, doc(t, 2), v1) // stored, never announced
	gate.open.Store(true)

	got := p.waitVersion(t, v2)
	took := time.Since(restarted)
	t.Logf("convergence after restart: %s (pod holds version %d)", took, got.Version)
	assert.Less(t, took, 2*time.Second, "the pod must converge within 2s of the restart")
	assert.Equal(t, doc(t, 2).Hash(), got.Hash())
	assert.Equal(t, v2, p.Current().Version)
}

// dialGate refuses dials while closed, so a test decides when a client may
// reconnect. Open, it dials the real server.
type dialGate struct{ open atomic.Bool }

func (g *dialGate) Dial(network, address string) (net.Conn, error) {
	if !g.open.Load() {
		return nil, fmt.Errorf("dial %s: gate closed by the test", address)
	}
	return (&net.Dialer{Timeout: time.Second}).Dial(network, address)
}

func TestSafetyIntervalCatchesUpFromKV(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	store := ensure(t, js)
	v1 := put(t, store, doc(t, 1), 0)

	p := newPod(t, srv.Connect(t), subscriber.WithResyncInterval(200*time.Millisecond))
	p.waitVersion(t, v1)

	v2 := put(t, store, doc(t, 2), v1) // stored, never announced
	got := p.waitVersion(t, v2)
	assert.Equal(t, doc(t, 2).Hash(), got.Hash())
	assert.GreaterOrEqual(t, p.Stats().Resyncs, uint64(2))
}

func TestTenThousandSwapsWhileReading(t *testing.T) {
	const (
		swaps   = 10_000
		readers = 4
	)
	srv := natstest.Start(t)
	nc := srv.Connect(t)

	// Versions alternate between two small documents.
	docs := [2]*betasync.Mapping{}
	names := [2]string{"b-0-v0", "b-0-v1"}
	for i := range docs {
		m, err := betasync.Parse(fmt.Appendf(nil, `{"anthropic": {"b-0": "b-0-v%d", "b-1": null}, "bedrock": {"b-0": "b-0"}}`, i))
		require.NoError(t, err)
		docs[i] = m
	}
	payloads := make([][]byte, swaps)
	for i := range payloads {
		b, err := json.Marshal(envelope(docs[i%2], uint64(i+1)))
		require.NoError(t, err)
		payloads[i] = b
	}

	last := make(chan struct{})
	sub, err := subscriber.New(nc, subscriber.WithOnUpdate(func(s *betasync.Snapshot) {
		if s.Version == swaps {
			close(last)
		}
	}))
	require.NoError(t, err)
	t.Cleanup(sub.Close)

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		errs    = make(chan error, readers)
		lookups atomic.Uint64
	)
	for range readers {
		wg.Go(func() {
			buf := make([]string, 0, 4)
			var prev uint64
			for !stop.Load() {
				cur := sub.Current()
				if cur == nil {
					errs <- fmt.Errorf("Current returned nil")
					return
				}
				if cur.Version < prev {
					errs <- fmt.Errorf("version went back from %d to %d", prev, cur.Version)
					return
				}
				prev = cur.Version
				buf = cur.AppendBetas(buf[:0], "anthropic", "b-1, b-0", "b-0")
				// Version v carries docs[(v-1)%2]: the snapshot must agree with itself.
				if cur.Version > 0 && (len(buf) != 1 || buf[0] != names[(cur.Version-1)%2]) {
					errs <- fmt.Errorf("version %d: got betas %q, want [%s]", cur.Version, buf, names[(cur.Version-1)%2])
					return
				}
				lookups.Add(1)
				runtime.Gosched() // four spinning readers on two cores would starve the subscriber
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() }) // also when a require below fails

	start := time.Now()
	for _, b := range payloads {
		require.NoError(t, nc.Publish(publisher.SubjectConfigUpdated, b))
	}
	require.NoError(t, nc.FlushWithContext(busCtx(t)))
	published := time.Since(start)

	// A guard against a hang, not a measurement: under -race on a busy
	// two-core machine applying 10,000 versions takes 0.5-2.5s.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	select {
	case <-last:
	case <-ctx.Done():
	}
	applied := time.Since(start)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	require.Equal(t, uint64(swaps), sub.Current().Version, "the last version must be reached")
	st := sub.Stats()
	assert.Equal(t, uint64(swaps), st.Applied, "every version applied, none dropped")
	assert.Zero(t, st.Stale)
	assert.Zero(t, st.Invalid)
	t.Logf("%d swaps: published in %s, all applied after %s; %d lookups meanwhile", swaps, published, applied, lookups.Load())
}

func TestOptions(t *testing.T) {
	fallback, err := betasync.Parse([]byte(`{"bedrock": {"x-1": "x-one"}}`))
	require.NoError(t, err)

	t.Run("WithFallback", func(t *testing.T) {
		srv := natstest.Start(t)
		nc := srv.Connect(t)
		p := newPod(t, nc, subscriber.WithFallback(fallback))

		cur := p.Current()
		assert.Same(t, fallback, cur.Mapping)
		assert.Equal(t, fallback.Hash(), cur.Hash())
		assert.Zero(t, cur.Version)
		assert.Equal(t, []string{"x-one"}, cur.Betas("bedrock", "x-1"))
		assert.False(t, p.Ready())

		announce(t, nc, doc(t, 1), 1)
		p.waitVersion(t, 1)
		assert.Empty(t, p.Current().Betas("bedrock", "x-1"), "the bus version replaces the fallback")
		assert.True(t, p.Ready())
	})

	t.Run("WithSubject", func(t *testing.T) {
		srv := natstest.Start(t)
		nc := srv.Connect(t)
		p := newPod(t, nc, subscriber.WithSubject("tenant-a.config.updated"))

		// The default subject is not listened to: sent first, applied never.
		announce(t, nc, doc(t, 9), 9)
		b, err := json.Marshal(envelope(doc(t, 1), 1))
		require.NoError(t, err)
		publish(t, nc, "tenant-a.config.updated", b)
		p.waitVersion(t, 1)
		assert.Equal(t, uint64(1), p.Current().Version)
		assert.Zero(t, p.Stats().Stale, "the default subject's event never arrived")
	})

	t.Run("WithBucket", func(t *testing.T) {
		srv := natstest.Start(t)
		_, js := srv.JetStream(t)
		_, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "tenant_a_config", History: 8})
		require.NoError(t, err)
		other, err := kv.OpenMappings(t.Context(), js, "tenant_a_config")
		require.NoError(t, err)
		want := doc(t, 3)
		version := put(t, other, want, 0)
		// The default bucket holds a newer version, which must not be read.
		def := ensure(t, js)
		put(t, def, doc(t, 5), put(t, def, doc(t, 4), 0))

		p := newPod(t, srv.Connect(t), subscriber.WithBucket("tenant_a_config"))
		got := p.waitVersion(t, version)
		assert.Equal(t, want.Hash(), got.Hash())
		assert.Equal(t, version, p.Current().Version)
	})
}

// TestOffer: a version handed over in-process (by the daemon's own worker)
// is served at once, older ones are ignored, and the later announcement of
// the same version is a stale duplicate, not decoded again.
func TestOffer(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	p := newPod(t, nc)

	p.Offer(envelope(doc(t, 3), 3))
	assert.Equal(t, uint64(3), p.Current().Version, "served when Offer returns")
	assert.Equal(t, doc(t, 3).Hash(), p.Current().Hash())
	assert.False(t, p.Current().AppliedAt.IsZero())
	assert.True(t, p.Ready())

	p.Offer(envelope(doc(t, 2), 2))
	assert.Equal(t, uint64(3), p.Current().Version, "an older version is ignored")

	before := p.Stats()
	announce(t, nc, doc(t, 3), 3)
	announce(t, nc, doc(t, 4), 4)
	p.waitVersion(t, 4)
	assert.Equal(t, before.Stale+1, p.Stats().Stale, "the announcement of the offered version is a duplicate")

	p.Close()
	late := envelope(doc(t, 5), 5)
	done := make(chan struct{})
	go func() { p.Offer(late); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Offer blocked on a closed subscriber")
	}
}
