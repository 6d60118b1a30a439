package natsconf_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natsconf"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
)

// waitFor bounds every wait for something the server must send. It is a
// deadline for a hung test, not a measurement.
const waitFor = 5 * time.Second

// The fleet view's subject and service (package subscriber).
const (
	subjectPodStatus = "betasync.pod.status"
	podService       = "betasync_pod"
)

// client is a connection as one user, recording the errors the server sends
// it asynchronously (permissions violations among them).
type client struct {
	*nats.Conn
	errs chan error
}

func connect(t *testing.T, s *natsconf.Server, user string) *client {
	t.Helper()
	c := &client{errs: make(chan error, 64)}
	nc, err := nats.Connect(s.ClientURL(),
		nats.UserInfo(user, s.Passwords[user]),
		nats.Name(user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}),
	)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// jetStream returns a JetStream context on c.
func (c *client) jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(c.Conn)
	require.NoError(t, err)
	return js
}

// requireClean checks that the server has rejected nothing c sent so far.
// The server answers the flush's PING after any error about what came
// before it, and the client records such an error (LastError) while reading,
// before it reads the PONG: so this is exact, with no waiting.
func (c *client) requireClean(t *testing.T) {
	t.Helper()
	require.NoError(t, c.Flush())
	require.NoError(t, c.LastError(), "the server refused something user %s is meant to do", c.Opts.Name)
}

// requireViolation waits for the server to report that it refused op
// ("Publish" or "Subscription") on subject.
func (c *client) requireViolation(t *testing.T, op, subject string) {
	t.Helper()
	want := fmt.Sprintf("Permissions Violation for %s to %q", op, subject)
	deadline := time.After(waitFor)
	var seen []string
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
			seen = append(seen, err.Error())
		case <-deadline:
			t.Fatalf("user %s: no %q from the server; other errors: %q", c.Opts.Name, want, seen)
		}
	}
}

// requireDenied runs call, which sends a request on subject, and checks
// that the server refuses it: the violation arrives, and call fails (it
// would otherwise wait for a reply that never comes, so it is cancelled as
// soon as the violation is in).
func (c *client) requireDenied(t *testing.T, subject string, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitFor)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	c.requireViolation(t, "Publish", subject)
	cancel()
	require.Error(t, <-done)
}

// busCtx bounds one call on the bus.
func busCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// daemon does, as user betasync, what the daemon does on the bus: it owns
// the buckets, holds the lease, writes the schedule and the mapping
// versions, announces them, and answers commands as the micro service
// "betasync".
type daemon struct {
	*client
	store   *kv.Store
	version atomic.Uint64 // the latest version stored
}

func startDaemon(t *testing.T, s *natsconf.Server) *daemon {
	t.Helper()
	d := &daemon{client: connect(t, s, "betasync")}
	ctx := busCtx(t)
	js := d.jetStream(t)
	store, err := kv.Ensure(ctx, js, kv.Config{})
	require.NoError(t, err)
	d.store = store

	state, err := js.KeyValue(ctx, kv.BucketState)
	require.NoError(t, err)
	// A history bigger than a consumer's flow-control window (the server
	// asks for a flow-control reply after 1 MiB in flight), as 64 versions
	// of a large mapping would be: reading it needs the $JS.FC replies.
	for i := range bigRevisions {
		_, err = state.Put(ctx, bigKey, bigValue(i))
		require.NoError(t, err)
	}
	requireBigHistory(t, ctx, state)

	// The lease (create, compare-and-swap renewal) and a fenced schedule write.
	token, err := store.Lease.Acquire(ctx, "replica-1")
	require.NoError(t, err)
	rev, err := store.Lease.Renew(ctx, "replica-1", token)
	require.NoError(t, err)
	_, err = store.Schedules.Update(ctx, token, func(s *kv.Schedule) error {
		s.IntervalHours = 24
		return nil
	})
	require.NoError(t, err)

	// The first version, stored and announced; the history (an ordered
	// consumer) reads it back.
	env, err := d.put(ctx)
	require.NoError(t, err)
	require.NoError(t, d.announce(env))
	require.NoError(t, publisher.PublishBeacon(d.Conn, env.Version, env.Hash()))
	history, err := store.Mappings.History(ctx)
	require.NoError(t, err)
	require.Len(t, history, 1)

	readBuckets(t, d.client)

	svc, err := micro.AddService(d.Conn, micro.Config{Name: publisher.ServiceName, Version: "0.0.0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	require.NoError(t, svc.AddEndpoint("reload", micro.HandlerFunc(d.reload), micro.WithEndpointSubject(publisher.SubjectReload)))
	require.NoError(t, svc.AddEndpoint("schedule_status", micro.HandlerFunc(d.status), micro.WithEndpointSubject(publisher.SubjectScheduleStatus)))
	d.requireClean(t)

	t.Cleanup(func() {
		// Runs before the connection closes (cleanups run last first).
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		assert.NoError(t, store.Lease.Release(ctx, rev))
		assert.NoError(t, d.Flush())
		assert.NoError(t, d.LastError())
	})
	return d
}

const (
	bigKey       = "big"
	bigRevisions = 4
)

// bigValue is the i-th revision of bigKey: 768 KiB.
func bigValue(i int) []byte {
	return []byte(strings.Repeat(string(rune('a'+i)), 768<<10))
}

// requireBigHistory reads every revision of bigKey from b.
func requireBigHistory(t *testing.T, ctx context.Context, b jetstream.KeyValue) {
	t.Helper()
	history, err := b.History(ctx, bigKey)
	require.NoError(t, err)
	require.Len(t, history, bigRevisions)
	for i, e := range history {
		require.Equal(t, bigValue(i), e.Value())
	}
}

// put stores the embedded mapping as a new version.
func (d *daemon) put(ctx context.Context) (*betasync.Snapshot, error) {
	env := betasync.NewSnapshot(betasync.Default(), betasync.SourceEmbedded, time.Now())
	rev, err := d.store.Mappings.Put(ctx, env, d.version.Load())
	if err != nil {
		return env, err
	}
	d.version.Store(rev)
	env.Version = rev
	return env, nil
}

// announce publishes env on config.updated.
func (d *daemon) announce(env *betasync.Snapshot) error {
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return d.Publish(publisher.SubjectConfigUpdated, data)
}

// reload answers betasync.reload: a new version, stored and announced.
// (Handlers run on the client's goroutine: they report failures in the
// reply, never with require.)
func (d *daemon) reload(req micro.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	env, err := d.put(ctx)
	if err == nil {
		err = d.announce(env)
	}
	if err != nil {
		_ = req.Error("500", err.Error(), nil)
		return
	}
	_ = req.RespondJSON(map[string]any{"version": env.Version})
}

// status answers betasync.schedule.status from the state and lock buckets.
func (d *daemon) status(req micro.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sch, _, err := d.store.Schedules.Get(ctx)
	if err != nil {
		_ = req.Error("500", err.Error(), nil)
		return
	}
	holder, err := d.store.Lease.Holder(ctx)
	if err != nil {
		_ = req.Error("500", err.Error(), nil)
		return
	}
	_ = req.RespondJSON(map[string]any{"interval_hours": sch.IntervalHours, "lock_holder": holder})
}

// pod does, as user pod, what a pod does: reads the latest version from KV,
// follows config.updated, and answers the fleet view with the version it
// holds.
type pod struct {
	*client
	name    string
	events  *nats.Subscription
	version atomic.Uint64
}

func startPod(t *testing.T, s *natsconf.Server, name string) *pod {
	t.Helper()
	p := &pod{client: connect(t, s, "pod"), name: name}
	ctx := busCtx(t)
	mappings, err := kv.OpenMappings(ctx, p.jetStream(t), kv.BucketConfig)
	require.NoError(t, err)
	env, err := mappings.Latest(ctx) // validated as it is read
	require.NoError(t, err)
	p.version.Store(env.Version)

	p.events, err = p.SubscribeSync(publisher.SubjectConfigUpdated)
	require.NoError(t, err)
	_, err = p.SubscribeSync(publisher.SubjectConfigCurrent) // the beacon
	require.NoError(t, err)

	svc, err := micro.AddService(p.Conn, micro.Config{Name: podService, Version: "0.0.0", Metadata: map[string]string{"pod": name}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	require.NoError(t, svc.AddEndpoint("status", micro.HandlerFunc(func(req micro.Request) {
		_ = req.RespondJSON(map[string]any{"pod": p.name, "version": p.version.Load()})
	}), micro.WithEndpointSubject(subjectPodStatus), micro.WithEndpointQueueGroupDisabled()))
	p.requireClean(t)
	return p
}

// nextVersion waits for the next config.updated on sub and returns its
// version, after checking that it carries a valid mapping.
func nextVersion(t *testing.T, sub *nats.Subscription) uint64 {
	t.Helper()
	msg, err := sub.NextMsg(waitFor)
	require.NoError(t, err)
	var env betasync.Snapshot
	require.NoError(t, json.Unmarshal(msg.Data, &env), "a valid mapping")
	return env.Version
}

// request sends a request as c and decodes the JSON reply into out, failing
// on a micro error reply.
func request(t *testing.T, c *client, subject string, out any) {
	t.Helper()
	msg, err := c.RequestWithContext(busCtx(t), subject, nil)
	require.NoError(t, err, "request %s as %s", subject, c.Opts.Name)
	require.Empty(t, msg.Header.Get(micro.ErrorHeader), "request %s as %s", subject, c.Opts.Name)
	if out != nil {
		require.NoError(t, json.Unmarshal(msg.Data, out))
	}
}

// readKey reads key from bucket as c.
func readKey(t *testing.T, c *client, bucket, key string) []byte {
	t.Helper()
	ctx := busCtx(t)
	b, err := c.jetStream(t).KeyValue(ctx, bucket)
	require.NoError(t, err, "open %s as %s", bucket, c.Opts.Name)
	e, err := b.Get(ctx, key)
	require.NoError(t, err, "get %s/%s as %s", bucket, key, c.Opts.Name)
	return e.Value()
}

func TestEachUserCanDoItsJob(t *testing.T) {
	s := natsconf.Start(t)
	d := startDaemon(t, s)
	pods := []*pod{startPod(t, s, "pod-1"), startPod(t, s, "pod-2")}
	for _, p := range pods {
		require.Equal(t, d.version.Load(), p.version.Load(), "%s read the stored version", p.name)
	}

	// What an API replica does: the user api, or betasync for a replica
	// with both roles.
	for _, user := range []string{"api", "betasync"} {
		t.Run(user+" as the API", func(t *testing.T) {
			apiJob(t, connect(t, s, user), d, pods)
		})
	}

	t.Run("admin", func(t *testing.T) {
		admin := connect(t, s, "admin")
		_, err := admin.SubscribeSync(publisher.SubjectConfigUpdated) // nats sub config.updated
		require.NoError(t, err)

		request(t, admin, publisher.SubjectReload, nil) // nats req betasync.reload ''
		request(t, admin, publisher.SubjectScheduleStatus, nil)
		for _, service := range []string{publisher.ServiceName, podService} {
			info, err := micro.ControlSubject(micro.InfoVerb, service, "")
			require.NoError(t, err)
			request(t, admin, info, nil) // nats micro info betasync
		}

		// nats kv history betasync_config mapping
		mappings, err := kv.OpenMappings(busCtx(t), admin.jetStream(t), kv.BucketConfig)
		require.NoError(t, err)
		history, err := mappings.History(busCtx(t))
		require.NoError(t, err)
		assert.Len(t, history, 4) // the first version, two API reloads, this one
		// nats kv get/history on every bucket, a history longer than the
		// flow-control window included.
		readBuckets(t, admin)
		state, err := admin.jetStream(t).KeyValue(busCtx(t), kv.BucketState)
		require.NoError(t, err)
		requireBigHistory(t, busCtx(t), state)
		// nats kv ls, nats account info
		js := admin.jetStream(t)
		var names []string
		for name := range js.KeyValueStoreNames(busCtx(t)).Name() {
			names = append(names, name)
		}
		assert.ElementsMatch(t, []string{kv.BucketConfig, kv.BucketState, kv.BucketLock}, names)
		var stores int
		for range js.KeyValueStores(busCtx(t)).Status() {
			stores++
		}
		assert.Equal(t, 3, stores)
		_, err = js.AccountInfo(busCtx(t))
		require.NoError(t, err)

		admin.requireClean(t)
	})
}

// apiJob is what an API replica does as c: commands, the readiness ping,
// the fleet view, and reading KV.
func apiJob(t *testing.T, c *client, d *daemon, pods []*pod) {
	t.Helper()
	events, err := c.SubscribeSync(publisher.SubjectConfigUpdated)
	require.NoError(t, err)
	require.NoError(t, c.Flush())

	// A reload command, answered by the daemon, whose new version every pod
	// (and the API's own subscriber) receives.
	var reload struct{ Version uint64 }
	request(t, c, publisher.SubjectReload, &reload)
	require.Equal(t, d.version.Load(), reload.Version)
	assert.Equal(t, reload.Version, nextVersion(t, events))
	for _, p := range pods {
		v := nextVersion(t, p.events)
		require.Equal(t, reload.Version, v, p.name)
		p.version.Store(v)
	}

	// The schedule status, and the ping /readyz sends.
	var status struct {
		IntervalHours float64 `json:"interval_hours"`
		LockHolder    string  `json:"lock_holder"`
	}
	request(t, c, publisher.SubjectScheduleStatus, &status)
	assert.InDelta(t, 24.0, status.IntervalHours, 0)
	assert.Equal(t, "replica-1", status.LockHolder)
	ping, err := micro.ControlSubject(micro.PingVerb, publisher.ServiceName, "")
	require.NoError(t, err)
	request(t, c, ping, nil)

	// The fleet view: every pod answers (no queue group), with the version
	// it holds.
	inbox := c.NewInbox()
	replies, err := c.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, c.PublishRequest(subjectPodStatus, inbox, nil))
	seen := map[string]uint64{}
	for range pods {
		msg, err := replies.NextMsg(waitFor)
		require.NoError(t, err)
		var st struct {
			Pod     string
			Version uint64
		}
		require.NoError(t, json.Unmarshal(msg.Data, &st))
		seen[st.Pod] = st.Version
	}
	assert.Equal(t, map[string]uint64{"pod-1": reload.Version, "pod-2": reload.Version}, seen)
	podPing, err := micro.ControlSubject(micro.PingVerb, podService, "")
	require.NoError(t, err)
	request(t, c, podPing, nil)

	// Reading KV: the mapping (its own subscriber), the schedule and the
	// lease holder.
	mappings, err := kv.OpenMappings(busCtx(t), c.jetStream(t), kv.BucketConfig)
	require.NoError(t, err)
	env, err := mappings.Latest(busCtx(t))
	require.NoError(t, err)
	assert.Equal(t, reload.Version, env.Version)
	var sch kv.Schedule
	require.NoError(t, json.Unmarshal(readKey(t, c, kv.BucketState, kv.KeySchedule), &sch))
	assert.InDelta(t, 24.0, sch.IntervalHours, 0)
	assert.Equal(t, "replica-1", string(readKey(t, c, kv.BucketLock, kv.KeyLease)))

	c.requireClean(t)
}

// readBuckets reads, as c, one key of every bucket in each way the KV
// client can: its latest value, a given revision, and its history.
func readBuckets(t *testing.T, c *client) {
	t.Helper()
	for bucket, key := range map[string]string{
		kv.BucketConfig: kv.KeyMapping,
		kv.BucketState:  kv.KeySchedule,
		kv.BucketLock:   kv.KeyLease,
	} {
		ctx := busCtx(t)
		b, err := c.jetStream(t).KeyValue(ctx, bucket)
		require.NoError(t, err, "open %s as %s", bucket, c.Opts.Name)
		latest, err := b.Get(ctx, key)
		require.NoError(t, err, "get %s/%s as %s", bucket, key, c.Opts.Name)
		rev, err := b.GetRevision(ctx, key, latest.Revision())
		require.NoError(t, err, "get %s/%s revision %d as %s", bucket, key, latest.Revision(), c.Opts.Name)
		assert.Equal(t, latest.Value(), rev.Value())
		history, err := b.History(ctx, key)
		require.NoError(t, err, "history of %s/%s as %s", bucket, key, c.Opts.Name)
		assert.NotEmpty(t, history)
	}
}

func TestEachUserCanDoNoMore(t *testing.T) {
	s := natsconf.Start(t)
	d := startDaemon(t, s)
	envelope, err := json.Marshal(betasync.NewSnapshot(betasync.Default(), betasync.SourceRemote, time.Now()))
	require.NoError(t, err)

	// putInto writes key into bucket as c, through a handle opened as the
	// daemon would (opening needs only read access).
	putInto := func(t *testing.T, c *client, bucket, key string) func(ctx context.Context) error {
		t.Helper()
		b, err := c.jetStream(t).KeyValue(busCtx(t), bucket)
		require.NoError(t, err)
		return func(ctx context.Context) error {
			_, err := b.Put(ctx, key, envelope)
			return err
		}
	}
	publishEvent := func(t *testing.T, c *client) {
		require.NoError(t, c.Publish(publisher.SubjectConfigUpdated, envelope))
		c.requireViolation(t, "Publish", publisher.SubjectConfigUpdated)
	}
	publishBeacon := func(t *testing.T, c *client) {
		require.NoError(t, publisher.PublishBeacon(c.Conn, 99, "forged"))
		c.requireViolation(t, "Publish", publisher.SubjectConfigCurrent)
	}
	command := func(t *testing.T, c *client, subject string) {
		c.requireDenied(t, subject, func(ctx context.Context) error {
			_, err := c.RequestWithContext(ctx, subject, nil)
			return err
		})
	}
	subscribe := func(t *testing.T, c *client, subject string) {
		_, err := c.SubscribeSync(subject)
		require.NoError(t, err)
		c.requireViolation(t, "Subscription", subject)
	}
	kvSubject := func(bucket, key string) string { return "$KV." + bucket + "." + key }

	tests := []struct {
		user, name string
		try        func(t *testing.T, c *client)
	}{
		{"pod", "publish config.updated", publishEvent},
		{"pod", "publish config.current", publishBeacon},
		{"pod", "send betasync.reload", func(t *testing.T, c *client) { command(t, c, publisher.SubjectReload) }},
		{"pod", "send betasync.schedule.status", func(t *testing.T, c *client) { command(t, c, publisher.SubjectScheduleStatus) }},
		{"pod", "ask the fleet view", func(t *testing.T, c *client) { command(t, c, subjectPodStatus) }},
		{"pod", "put into betasync_config", func(t *testing.T, c *client) {
			c.requireDenied(t, kvSubject(kv.BucketConfig, kv.KeyMapping), putInto(t, c, kv.BucketConfig, kv.KeyMapping))
		}},
		{"pod", "read betasync_state", func(t *testing.T, c *client) {
			c.requireDenied(t, "$JS.API.STREAM.INFO.KV_"+kv.BucketState, func(ctx context.Context) error {
				_, err := c.jetStream(t).KeyValue(ctx, kv.BucketState)
				return err
			})
		}},
		{"pod", "answer commands", func(t *testing.T, c *client) { subscribe(t, c, publisher.SubjectReload) }},
		{"pod", "answer the workers' ping (/readyz)", func(t *testing.T, c *client) {
			subscribe(t, c, "$SRV.PING."+publisher.ServiceName)
		}},
		{"pod", "reply where it was not asked", func(t *testing.T, c *client) {
			require.NoError(t, c.Publish("_INBOX.someone-else", []byte("{}")))
			c.requireViolation(t, "Publish", "_INBOX.someone-else")
		}},

		{"api", "publish config.updated", publishEvent},
		{"api", "publish config.current", publishBeacon},
		{"api", "put into betasync_config", func(t *testing.T, c *client) {
			c.requireDenied(t, kvSubject(kv.BucketConfig, kv.KeyMapping), putInto(t, c, kv.BucketConfig, kv.KeyMapping))
		}},
		{"api", "take the lease", func(t *testing.T, c *client) {
			c.requireDenied(t, kvSubject(kv.BucketLock, kv.KeyLease), putInto(t, c, kv.BucketLock, kv.KeyLease))
		}},
		{"api", "create the buckets", func(t *testing.T, c *client) {
			c.requireDenied(t, "$JS.API.INFO", func(ctx context.Context) error {
				_, err := kv.Ensure(ctx, c.jetStream(t), kv.Config{})
				return err
			})
		}},
		{"api", "answer commands", func(t *testing.T, c *client) { subscribe(t, c, publisher.SubjectReload) }},

		{"admin", "publish config.updated", publishEvent},
		{"admin", "publish config.current", publishBeacon},
		{"admin", "put into betasync_config", func(t *testing.T, c *client) {
			c.requireDenied(t, kvSubject(kv.BucketConfig, kv.KeyMapping), putInto(t, c, kv.BucketConfig, kv.KeyMapping))
		}},
		{"admin", "put into betasync_state", func(t *testing.T, c *client) {
			c.requireDenied(t, kvSubject(kv.BucketState, kv.KeySchedule), putInto(t, c, kv.BucketState, kv.KeySchedule))
		}},
		{"admin", "delete a bucket", func(t *testing.T, c *client) {
			c.requireDenied(t, "$JS.API.STREAM.DELETE.KV_"+kv.BucketConfig, func(ctx context.Context) error {
				return c.jetStream(t).DeleteKeyValue(ctx, kv.BucketConfig)
			})
		}},
		{"admin", "answer commands", func(t *testing.T, c *client) { subscribe(t, c, publisher.SubjectReload) }},
	}
	for _, tt := range tests {
		t.Run(tt.user+" may not "+tt.name, func(t *testing.T) {
			tt.try(t, connect(t, s, tt.user))
		})
	}

	// Nothing above reached KV: the daemon's version is still the latest.
	env, err := d.store.Mappings.Latest(busCtx(t))
	require.NoError(t, err)
	assert.Equal(t, d.version.Load(), env.Version)
}

func TestOnlyKnownUsersWithTheirPassword(t *testing.T) {
	s := natsconf.Start(t)
	for _, tt := range []struct{ name, user, password string }{
		{"no user", "", ""},
		{"unknown user", "root", s.Passwords["admin"]},
		{"another user's password", "admin", s.Passwords["betasync"]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := []nats.Option{nats.NoReconnect()}
			if tt.user != "" {
				opts = append(opts, nats.UserInfo(tt.user, tt.password))
			}
			nc, err := nats.Connect(s.ClientURL(), opts...)
			if err == nil {
				nc.Close()
			}
			require.ErrorIs(t, err, nats.ErrAuthorization)
		})
	}
}

func TestEveryPasswordMustBeSet(t *testing.T) {
	for user, env := range natsconf.PasswordVars {
		t.Run(user, func(t *testing.T) {
			for _, other := range natsconf.PasswordVars {
				t.Setenv(other, "pw"+rand.Text())
			}
			require.NoError(t, os.Unsetenv(env)) // t.Setenv restores it
			_, err := server.ProcessConfigFile(natsconf.File())
			require.Error(t, err)
			assert.Contains(t, err.Error(), env)
		})
	}
}
