package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
)

var subjects = []string{
	publisher.SubjectReload,
	publisher.SubjectScheduleSet,
	publisher.SubjectScheduleCancel,
	publisher.SubjectScheduleStatus,
	publisher.SubjectHistory,
	publisher.SubjectHistoryGet,
	publisher.SubjectRollback,
	publisher.SubjectOverrideSet,
	publisher.SubjectOverrideDelete,
	publisher.SubjectOverrideList,
	publisher.SubjectFleet,
}

func TestAnnounce(t *testing.T) {
	srv := natstest.Start(t)
	pub := srv.Connect(t)
	subConn := srv.Connect(t)
	sub, err := subConn.SubscribeSync(publisher.SubjectConfigUpdated)
	require.NoError(t, err)
	require.NoError(t, subConn.Flush())

	m, err := betasync.Parse(docUpstream)
	require.NoError(t, err)
	env := betasync.NewSnapshot(m, betasync.SourceRemote, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	env.Version, env.URL, env.ETag = 7, "https://example.test/m.json", `"e1"`
	require.NoError(t, publisher.Announce(t.Context(), pub, env))

	msg, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err)
	var got betasync.Snapshot
	require.NoError(t, json.Unmarshal(msg.Data, &got), "the announced envelope validates")
	assert.Equal(t, env.Version, got.Version)
	assert.Equal(t, env.Hash(), got.Hash())
	assert.Equal(t, env.URL, got.URL)
	assert.Equal(t, env.ETag, got.ETag)
	assert.True(t, env.FetchedAt.Equal(got.FetchedAt))

	t.Run("closed connection", func(t *testing.T) {
		nc := srv.Connect(t)
		nc.Close()
		assert.Error(t, publisher.Announce(t.Context(), nc, env))
	})
}

func TestClientCommands(t *testing.T) {
	s := newStack(t, testbed.Serve(docUpstream))
	ctx := t.Context()

	res, err := s.Client.Reload(ctx)
	require.NoError(t, err)
	assert.Equal(t, betasync.StatusSuccess, res.Status)
	assert.True(t, res.Changed)
	assert.NotZero(t, res.Version)
	assert.Equal(t, 7, res.ProvidersCount)
	assert.Equal(t, betasync.SourceRemote, res.Source)

	t.Run("reload unchanged", func(t *testing.T) {
		again, err := s.Client.Reload(ctx)
		require.NoError(t, err)
		assert.False(t, again.Changed)
		assert.Equal(t, res.Version, again.Version)
	})

	t.Run("set schedule", func(t *testing.T) {
		got, err := s.Client.SetSchedule(ctx, 24)
		require.NoError(t, err)
		assert.Equal(t, betasync.StatusSuccess, got.Status)
		assert.InDelta(t, 24.0, got.IntervalHours, 0)
		require.NotNil(t, got.NextRun)
		assert.WithinDuration(t, time.Now().Add(24*time.Hour), *got.NextRun, time.Hour)
	})

	t.Run("invalid schedules change nothing", func(t *testing.T) {
		_, before, err := s.Store.Schedules.Get(ctx)
		require.NoError(t, err)
		// Missing and non-numeric hours cannot be sent by the typed
		// client: TestScheduleSetPayloads sends them raw.
		for _, tt := range []struct {
			name  string
			hours float64
			code  string
		}{
			{"zero", 0, betasync.EINVALID},
			{"negative", -1, betasync.EINVALID},
			{"absurd", 8761, betasync.EINVALID},
			{"NaN", math.NaN(), betasync.EINVALID},
			{"infinite", math.Inf(1), betasync.EINVALID},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.Client.SetSchedule(ctx, tt.hours)
				testbed.RequireCode(t, err, tt.code, "hours")
			})
		}
		_, after, err := s.Store.Schedules.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, after)
	})

	t.Run("status", func(t *testing.T) {
		st, err := s.Client.Status(ctx)
		require.NoError(t, err)
		assert.True(t, st.Scheduled)
		if assert.NotNil(t, st.IntervalHours) {
			assert.InDelta(t, 24.0, *st.IntervalHours, 0)
		}
		assert.NotNil(t, st.NextScheduledRun)
		assert.NotNil(t, st.LastSuccess)
		assert.Equal(t, res.Version, st.ConfigVersion)
		assert.Equal(t, res.Hash, st.ConfigHash)
		assert.Equal(t, betasync.SourceRemote, st.ConfigSource)
	})

	t.Run("cancel", func(t *testing.T) {
		got, err := s.Client.CancelSchedule(ctx)
		require.NoError(t, err)
		assert.Equal(t, betasync.StatusSuccess, got.Status)
		st, err := s.Client.Status(ctx)
		require.NoError(t, err)
		assert.False(t, st.Scheduled)
		assert.Nil(t, st.IntervalHours)
		assert.Nil(t, st.NextScheduledRun)
	})

	t.Run("upstream failure", func(t *testing.T) {
		s.Upstream.Set(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", http.StatusBadGateway)
		})
		_, err := s.Client.Reload(ctx)
		testbed.RequireCode(t, err, betasync.EUPSTREAM, "status 502")
		st, err := s.Client.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, res.Version, st.ConfigVersion, "the last good version stays")
		if assert.NotNil(t, st.LastError) {
			assert.Contains(t, st.LastError.Message, "status 502")
		}
	})
}

// errorBody decodes a failed command's reply after checking its micro
// error headers.
func errorBody(t *testing.T, msg *nats.Msg, status int) betasync.ErrorReply {
	t.Helper()
	assert.Equal(t, strconv.Itoa(status), msg.Header.Get(micro.ErrorCodeHeader))
	var body betasync.ErrorReply
	require.NoError(t, json.Unmarshal(msg.Data, &body), "body: %s", msg.Data)
	assert.Equal(t, betasync.StatusError, body.Status)
	assert.Equal(t, body.Message, msg.Header.Get(micro.ErrorHeader), "the header carries the message too")
	assert.NotEmpty(t, body.Message)
	return body
}

func TestScheduleSetPayloads(t *testing.T) {
	s := newStack(t, testbed.Serve(docUpstream))
	ctx := t.Context()
	tests := []struct {
		name    string
		payload string
		status  int // 0: success
		code    string
		want    string // in the error message
	}{
		{name: "number", payload: `{"hours":24}`},
		{name: "string", payload: `{"hours":"24"}`},
		{name: "fraction", payload: `{"hours":0.5}`},
		{name: "padded string", payload: `{"hours":" 12 "}`},
		{name: "extra fields ignored", payload: `{"hours":6,"note":"x"}`},
		{name: "empty object", payload: `{}`, status: 422, code: betasync.EUNPROCESSABLE, want: "hours is required"},
		{name: "empty payload", payload: ``, status: 422, code: betasync.EUNPROCESSABLE, want: "hours is required"},
		{name: "null hours", payload: `{"hours":null}`, status: 422, code: betasync.EUNPROCESSABLE, want: "hours is required"},
		{name: "not a number", payload: `{"hours":"abc"}`, status: 422, code: betasync.EUNPROCESSABLE, want: "hours must be a number"},
		{name: "boolean", payload: `{"hours":true}`, status: 422, code: betasync.EUNPROCESSABLE, want: "hours must be a number"},
		{name: "hex", payload: `{"hours":"0x18"}`, status: 422, code: betasync.EUNPROCESSABLE, want: "hours must be a number"},
		{name: "array", payload: `{"hours":[24]}`, status: 422, code: betasync.EUNPROCESSABLE, want: "hours must be a number"},
		{name: "zero", payload: `{"hours":0}`, status: 400, code: betasync.EINVALID, want: "hours must be from"},
		{name: "negative", payload: `{"hours":-1}`, status: 400, code: betasync.EINVALID, want: "hours must be from"},
		{name: "absurd", payload: `{"hours":8761}`, status: 400, code: betasync.EINVALID, want: "hours must be from"},
		{name: "NaN string", payload: `{"hours":"NaN"}`, status: 400, code: betasync.EINVALID, want: "hours must be from"},
		{name: "infinity string", payload: `{"hours":"Inf"}`, status: 400, code: betasync.EINVALID, want: "hours must be from"},
		{name: "overflow", payload: `{"hours":1e999}`, status: 400, code: betasync.EINVALID, want: "hours must be from"},
		{name: "garbage", payload: "\x00\xffnot json{", status: 400, code: betasync.EINVALID, want: "JSON object"},
		{name: "JSON null", payload: `null`, status: 400, code: betasync.EINVALID, want: "JSON object"},
		{name: "JSON array", payload: `[24]`, status: 400, code: betasync.EINVALID, want: "JSON object"},
		{name: "bare number", payload: `24`, status: 400, code: betasync.EINVALID, want: "JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before, err := s.Store.Schedules.Get(ctx)
			require.NoError(t, err)
			msg := testbed.Request(t, s.NC, publisher.SubjectScheduleSet, []byte(tt.payload))
			if tt.status == 0 {
				assert.Empty(t, msg.Header.Get(micro.ErrorCodeHeader))
				var res betasync.ScheduleResult
				require.NoError(t, json.Unmarshal(msg.Data, &res))
				assert.Equal(t, betasync.StatusSuccess, res.Status)
				assert.Positive(t, res.IntervalHours)
				assert.NotNil(t, res.NextRun)
				return
			}
			body := errorBody(t, msg, tt.status)
			assert.Equal(t, tt.code, body.Code)
			assert.Contains(t, body.Message, tt.want)
			_, after, err := s.Store.Schedules.Get(ctx)
			require.NoError(t, err)
			assert.Equal(t, before, after, "nothing changed")
		})
	}
}

func TestGarbageOnEverySubject(t *testing.T) {
	s := newStack(t, testbed.Serve(docUpstream))
	ctx := t.Context()
	for _, subject := range subjects {
		t.Run(subject, func(t *testing.T) {
			for _, payload := range []string{"\x00\xff\xfe garbage", "{", `"a string"`, "[]"} {
				msg := testbed.Request(t, s.NC, subject, []byte(payload))
				body := errorBody(t, msg, http.StatusBadRequest)
				assert.Equal(t, betasync.EINVALID, body.Code, "payload %q", payload)
			}
		})
	}
	assert.Zero(t, s.Upstream.Hits(), "a rejected reload fetches nothing")

	t.Run("still serving", func(t *testing.T) {
		for _, subject := range []string{publisher.SubjectReload, publisher.SubjectScheduleCancel, publisher.SubjectScheduleStatus} {
			for _, payload := range []string{"", "{}", " \n"} {
				msg := testbed.Request(t, s.NC, subject, []byte(payload))
				assert.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "%s with %q: %s", subject, payload, msg.Data)
			}
		}
		_, err := s.Client.Status(ctx)
		assert.NoError(t, err)
	})
}

func TestClientErrorReplies(t *testing.T) {
	srv := natstest.Start(t)
	h := &testbed.Commands{}
	testbed.ServeCommands(t, srv.Connect(t), h, "stub")
	client := publisher.NewClient(srv.Connect(t))
	nc := srv.Connect(t)
	tests := []struct {
		name     string
		err      error
		status   int
		code     string
		message  string
		internal bool
	}{
		{name: "upstream", err: betasync.Errorf(betasync.EUPSTREAM, "fetching x: status 500"), status: 502, code: betasync.EUPSTREAM, message: "fetching x: status 500"},
		{name: "conflict", err: betasync.Errorf(betasync.ECONFLICT, "lost"), status: 409, code: betasync.ECONFLICT, message: "lost"},
		{name: "unavailable", err: betasync.Errorf(betasync.EUNAVAILABLE, "kv down"), status: 503, code: betasync.EUNAVAILABLE, message: "kv down"},
		{name: "wrapped", err: errors.Join(errors.New("context"), betasync.Errorf(betasync.EUPSTREAM, "inner")), status: 502, code: betasync.EUPSTREAM, message: "inner"},
		{name: "internal details stay inside", err: errors.New("secret: dial tcp 10.0.0.1"), status: 500, code: betasync.EINTERNAL, message: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.Fail(tt.err)
			_, err := client.Reload(t.Context())
			testbed.RequireCode(t, err, tt.code)
			assert.Equal(t, tt.message, betasync.ErrorMessage(err))

			msg := testbed.Request(t, nc, publisher.SubjectReload, nil)
			body := errorBody(t, msg, tt.status)
			assert.Equal(t, tt.code, body.Code)
			assert.Equal(t, tt.message, body.Message)
			assert.NotContains(t, string(msg.Data), "secret")
		})
	}
}

func TestClientNoWorker(t *testing.T) {
	srv := natstest.Start(t)
	client := publisher.NewClient(srv.Connect(t))
	ctx := t.Context()
	calls := map[string]func() error{
		"reload": func() error { _, err := client.Reload(ctx); return err },
		"set":    func() error { _, err := client.SetSchedule(ctx, 1); return err },
		"cancel": func() error { _, err := client.CancelSchedule(ctx); return err },
		"status": func() error { _, err := client.Status(ctx); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			testbed.RequireCode(t, call(), betasync.EUNAVAILABLE, "no betasync worker")
		})
	}

	t.Run("stopped service", func(t *testing.T) {
		svc := testbed.ServeCommands(t, srv.Connect(t), &testbed.Commands{}, "stub")
		_, err := client.Status(ctx)
		require.NoError(t, err)
		require.NoError(t, svc.Stop())
		require.NoError(t, svc.Stop(), "stopping twice is fine")
		_, err = client.Status(ctx)
		testbed.RequireCode(t, err, betasync.EUNAVAILABLE)
	})

	t.Run("closed connection", func(t *testing.T) {
		nc := srv.Connect(t)
		nc.Close()
		_, err := publisher.NewClient(nc).Status(ctx)
		testbed.RequireCode(t, err, betasync.EUNAVAILABLE, "not connected")
	})

	t.Run("no answer in time", func(t *testing.T) {
		h := &testbed.Commands{Block: make(chan struct{})}
		testbed.ServeCommands(t, srv.Connect(t), h, "slow")
		t.Cleanup(func() { close(h.Block) }) // before the service stops
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := client.Status(ctx)
		testbed.RequireCode(t, err, betasync.EUNAVAILABLE, "in time")
	})
}

func TestServiceDiscoverable(t *testing.T) {
	s := newStack(t, testbed.Serve(docUpstream))

	t.Run("info", func(t *testing.T) {
		info := s.Service.Info()
		assert.Equal(t, publisher.ServiceName, info.Name)
		assert.Equal(t, "1.2.3", info.Version)
		assert.Equal(t, "r1", info.Metadata["replica"])
		got := map[string]string{}
		for _, e := range info.Endpoints {
			got[e.Subject] = e.QueueGroup
		}
		for _, subject := range subjects {
			assert.Contains(t, got, subject)
			assert.NotEmpty(t, got[subject], "%s is served in a queue group", subject)
		}
	})

	t.Run("ping", func(t *testing.T) {
		subject, err := micro.ControlSubject(micro.PingVerb, publisher.ServiceName, "")
		require.NoError(t, err)
		msg := testbed.Request(t, s.NC, subject, nil)
		var ping micro.Ping
		require.NoError(t, json.Unmarshal(msg.Data, &ping))
		assert.Equal(t, publisher.ServiceName, ping.Name)
		assert.Equal(t, s.Service.Info().ID, ping.ID)
	})

	t.Run("info over the bus", func(t *testing.T) {
		subject, err := micro.ControlSubject(micro.InfoVerb, publisher.ServiceName, "")
		require.NoError(t, err)
		msg := testbed.Request(t, s.NC, subject, nil)
		var info micro.Info
		require.NoError(t, json.Unmarshal(msg.Data, &info))
		assert.Len(t, info.Endpoints, len(subjects))
	})

	// `nats micro` asks every service, a service by name, or one instance
	// by id: each verb answers on all three subjects, with micro's types.
	t.Run("every control subject", func(t *testing.T) {
		id := s.Service.Info().ID
		for verb, typ := range map[micro.Verb]string{
			micro.PingVerb: micro.PingResponseType, micro.InfoVerb: micro.InfoResponseType, micro.StatsVerb: micro.StatsResponseType,
		} {
			for _, name := range []string{"", publisher.ServiceName} {
				for _, instance := range []string{"", id} {
					if name == "" && instance != "" {
						continue
					}
					subject, err := micro.ControlSubject(verb, name, instance)
					require.NoError(t, err)
					msg := testbed.Request(t, s.NC, subject, nil)
					var got struct {
						Type string `json:"type"`
						ID   string `json:"id"`
					}
					require.NoError(t, json.Unmarshal(msg.Data, &got), subject)
					assert.Equal(t, typ, got.Type, subject)
					assert.Equal(t, id, got.ID, subject)
				}
			}
		}
	})
}

// A stopped replica leaves discovery: `nats micro ls` no longer lists it.
func TestStoppedServiceLeavesDiscovery(t *testing.T) {
	srv := natstest.Start(t)
	svc, err := publisher.Serve(srv.Connect(t), &testbed.Commands{}, publisher.ServiceConfig{ReplicaID: "gone"})
	require.NoError(t, err)
	nc := srv.Connect(t)
	testbed.Request(t, nc, "$SRV.PING.betasync", nil)
	require.NoError(t, svc.Stop())
	_, err = nc.Request("$SRV.PING.betasync", nil, time.Second)
	require.ErrorIs(t, err, nats.ErrNoResponders)
}

func TestQueueGroup(t *testing.T) {
	srv := natstest.Start(t)
	a, b := &testbed.Commands{}, &testbed.Commands{}
	testbed.ServeCommands(t, srv.Connect(t), a, "a")
	testbed.ServeCommands(t, srv.Connect(t), b, "b")
	client := publisher.NewClient(srv.Connect(t))
	nc := srv.Connect(t)

	t.Run("one answer per request", func(t *testing.T) {
		const requests = 40
		for range requests {
			_, err := client.Status(t.Context())
			require.NoError(t, err)
		}
		assert.Equal(t, int64(requests), a.Calls.Load()+b.Calls.Load(), "each request is handled by exactly one replica")
		assert.Positive(t, a.Calls.Load(), "both replicas share the work")
		assert.Positive(t, b.Calls.Load(), "both replicas share the work")
	})

	t.Run("both replicas discoverable", func(t *testing.T) {
		subject, err := micro.ControlSubject(micro.PingVerb, publisher.ServiceName, "")
		require.NoError(t, err)
		inbox := nc.NewRespInbox()
		sub, err := nc.SubscribeSync(inbox)
		require.NoError(t, err)
		require.NoError(t, nc.PublishRequest(subject, inbox, nil))
		ids := map[string]bool{}
		for range 2 {
			msg, err := sub.NextMsg(10 * time.Second)
			require.NoError(t, err)
			var ping micro.Ping
			require.NoError(t, json.Unmarshal(msg.Data, &ping))
			ids[ping.ID] = true
		}
		assert.Len(t, ids, 2)
	})
}

func TestReloadCoalescesOverNATS(t *testing.T) {
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		testbed.Serve(docUpstream)(w, r)
	})
	ctx := t.Context()
	const callers = 100
	results := make([]betasync.ReloadResult, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Client.Reload(ctx)
		})
	}
	close(start)
	wg.Wait()

	assert.LessOrEqual(t, s.Upstream.Hits(), 2, "a burst of reloads causes at most two fetches")
	latest, err := s.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	for i := range callers {
		if assert.NoError(t, errs[i], "caller %d", i) {
			assert.Equal(t, latest.Version, results[i].Version, "caller %d", i)
		}
	}
}

func TestServiceStopWaitsForCommands(t *testing.T) {
	srv := natstest.Start(t)
	h := &testbed.Commands{Block: make(chan struct{})}
	svc, err := publisher.Serve(srv.Connect(t), h, publisher.ServiceConfig{ReplicaID: "stub"})
	require.NoError(t, err)
	client := publisher.NewClient(srv.Connect(t))

	done := make(chan error, 1)
	go func() {
		_, err := client.Status(t.Context())
		done <- err
	}()
	require.Eventually(t, func() bool { return h.Calls.Load() == 1 }, 10*time.Second, 5*time.Millisecond)

	stopped := make(chan struct{})
	go func() {
		assert.NoError(t, svc.Stop())
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned with a command in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(h.Block)
	<-stopped
	assert.NoError(t, <-done, "the command in flight got its answer")
}

func TestServiceTooManyInFlight(t *testing.T) {
	srv := natstest.Start(t)
	h := &testbed.Commands{Block: make(chan struct{})}
	svc, err := publisher.Serve(srv.Connect(t), h, publisher.ServiceConfig{ReplicaID: "stub", MaxInFlight: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	t.Cleanup(func() { close(h.Block) })
	client := publisher.NewClient(srv.Connect(t))

	go func() { _, _ = client.Status(t.Context()) }()
	require.Eventually(t, func() bool { return h.Calls.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
	_, err = client.Status(t.Context())
	testbed.RequireCode(t, err, betasync.EUNAVAILABLE, "too many commands in flight")
}

// TestServiceShutdownIsBounded: a command that would run long does not
// hold a bounded shutdown past its bound; the command is cancelled.
func TestServiceShutdownIsBounded(t *testing.T) {
	srv := natstest.Start(t)
	h := &testbed.Commands{Block: make(chan struct{})} // never closed: only cancellation ends it
	svc, err := publisher.Serve(srv.Connect(t), h, publisher.ServiceConfig{ReplicaID: "stub", Timeout: time.Hour})
	require.NoError(t, err)
	client := publisher.NewClient(srv.Connect(t))
	done := make(chan error, 1)
	go func() {
		_, err := client.Reload(t.Context())
		done <- err
	}()
	require.Eventually(t, func() bool { return h.Calls.Load() == 1 }, 10*time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		assert.NoError(t, svc.Shutdown(ctx))
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return after its bound")
	}
	testbed.RequireCode(t, <-done, betasync.EUNAVAILABLE)
}
