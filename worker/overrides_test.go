package worker_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

// Documents of the override tests: an alias, a rename, a null.
var (
	docOverrideA = []byte(`{"provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07", "x-beta": "x-beta"},
  "bedrock": {"context-1m-2025-08-07": null, "advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"}}`)
	// docOverrideB changes x-beta, and now supports context-1m on Bedrock
	// under the name an operator's override forwards it as.
	docOverrideB = []byte(`{"provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07", "x-beta": "x-beta-v2"},
  "bedrock": {"context-1m-2025-08-07": "context-1m", "advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"}}`)
)

// fleet is a worker replica serving the commands on a real server, with
// several pods (subscribers) on their own connections.
type fleet struct {
	*testbed.Stack
	stop func()
	pods []*subscriber.Subscriber
	logs *logs
}

func newFleet(t *testing.T, doc []byte, pods int) *fleet {
	t.Helper()
	l := &logs{}
	s := testbed.NewStack(t, serve(doc), worker.Config{CheckInterval: time.Hour, Logger: l.Logger()}, worker.Deps{})
	f := &fleet{Stack: s, stop: run(t, s.Worker), logs: l}
	for range pods {
		sub, err := subscriber.New(s.Server.Connect(t))
		require.NoError(t, err)
		t.Cleanup(sub.Close)
		f.pods = append(f.pods, sub)
	}
	want := hashOf(t, doc)
	waitFor(t, func() bool {
		latest, err := s.Store.Mappings.Latest(t.Context())
		return err == nil && latest.Hash() == want
	}, "the start-up reload stores the upstream document")
	f.converge(t)
	return f
}

// converge waits until every pod serves the stored version, and returns it.
func (f *fleet) converge(t *testing.T) *betasync.Snapshot {
	t.Helper()
	latest, err := f.Store.Mappings.Latest(t.Context())
	require.NoError(t, err)
	for i, pod := range f.pods {
		waitFor(t, func() bool { return pod.Current().Version == latest.Version }, "pod %d applies version %d", i, latest.Version)
		assert.Equal(t, latest.Hash(), pod.Current().Hash())
		assert.True(t, latest.Overrides.Equal(pod.Current().Overrides), "pod %d knows which entries are overrides", i)
	}
	return latest
}

func lookup(m interface {
	Lookup(string, string) (string, bool)
}, provider, beta string) *string {
	if name, ok := m.Lookup(provider, beta); ok {
		return &name
	}
	return nil
}

func TestOverridesOverNATS(t *testing.T) {
	f := newFleet(t, docOverrideA, 3)
	ctx := t.Context()
	c := f.Client
	before := f.converge(t)

	list, err := c.ListOverrides(ctx)
	require.NoError(t, err)
	assert.Empty(t, list.Overrides)
	assert.Equal(t, before.Version, list.Version)

	t.Run("set through an alias renames on every pod", func(t *testing.T) {
		res, err := c.SetOverride(ctx, "bedrock_invoke", "context-1m-2025-08-07", new("context-1m"))
		require.NoError(t, err)
		assert.True(t, res.Changed)
		assert.Equal(t, "bedrock", res.Provider, "the alias is resolved")
		assert.Greater(t, res.Version, before.Version)
		assert.Equal(t, betasync.Overrides{"bedrock": {"context-1m-2025-08-07": new("context-1m")}}, res.Overrides)
		assert.Equal(t, betasync.Changes{"bedrock": {Renamed: map[string]betasync.Rename{"context-1m-2025-08-07": {To: "context-1m"}}}}, res.Changes)
		latest := f.converge(t)
		assert.Equal(t, res.Version, latest.Version)
		assert.Equal(t, betasync.SourceOverride, latest.Source)
		assert.Equal(t, before.FetchedAt, latest.FetchedAt, "fetched_at stays the upstream document's")
		for i, pod := range f.pods {
			assert.Equal(t, new("context-1m"), lookup(pod.Current(), "bedrock_invoke", "context-1m-2025-08-07"), "pod %d", i)
		}
	})

	t.Run("set null drops the beta", func(t *testing.T) {
		res, err := c.SetOverride(ctx, "anthropic", "x-beta", nil)
		require.NoError(t, err)
		assert.True(t, res.Changed)
		f.converge(t)
		for i, pod := range f.pods {
			assert.Nil(t, lookup(pod.Current(), "anthropic", "x-beta"), "pod %d", i)
		}
	})

	t.Run("setting the same override again stores nothing", func(t *testing.T) {
		res, err := c.SetOverride(ctx, "anthropic", "x-beta", nil)
		require.NoError(t, err)
		assert.False(t, res.Changed)
	})

	t.Run("invalid overrides are rejected and nothing changes", func(t *testing.T) {
		latest := f.converge(t)
		for _, tt := range []struct {
			name, provider, beta string
			value                *string
			want                 string
		}{
			{"unknown provider", "openai", "x-beta", nil, `provider "openai"`},
			{"beta with a comma", "anthropic", "a,b", nil, "comma"},
			{"padded beta", "anthropic", " x-beta", nil, "white space"},
			{"value with a comma", "anthropic", "x-beta", new("a,b"), "comma"},
			{"empty value", "anthropic", "x-beta", new(""), "empty"},
			{"value with a control character", "anthropic", "x-beta", new("a\r\nX-Injected: 1"), "control character"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := c.SetOverride(ctx, tt.provider, tt.beta, tt.value)
				requireCode(t, err, betasync.EINVALID, tt.want)
			})
		}
		after, err := c.ListOverrides(ctx)
		require.NoError(t, err)
		assert.Equal(t, latest.Version, after.Version, "no new version")
		assert.Len(t, after.Overrides, 2)
	})

	t.Run("raw payloads", func(t *testing.T) {
		latest := f.converge(t)
		for _, tt := range []struct {
			name, subject, payload string
			status                 int
		}{
			{"missing value", publisher.SubjectOverrideSet, `{"provider": "anthropic", "beta": "x-beta"}`, http.StatusUnprocessableEntity},
			{"missing provider", publisher.SubjectOverrideSet, `{"beta": "x-beta", "value": null}`, http.StatusUnprocessableEntity},
			{"a number", publisher.SubjectOverrideSet, `{"provider": "anthropic", "beta": "x-beta", "value": 7}`, http.StatusBadRequest},
			{"missing beta on delete", publisher.SubjectOverrideDelete, `{"provider": "anthropic"}`, http.StatusUnprocessableEntity},
			{"unknown override", publisher.SubjectOverrideDelete, `{"provider": "anthropic", "beta": "nope"}`, http.StatusNotFound},
		} {
			t.Run(tt.name, func(t *testing.T) {
				msg := testbed.Request(t, f.NC, tt.subject, []byte(tt.payload))
				assert.Equal(t, fmt.Sprint(tt.status), msg.Header.Get("Nats-Service-Error-Code"), "body: %s", msg.Data)
			})
		}
		msg := testbed.Request(t, f.NC, publisher.SubjectOverrideList, nil)
		assert.Empty(t, msg.Header.Get("Nats-Service-Error-Code"))
		assert.Contains(t, string(msg.Data), `"x-beta":null`)
		again, err := f.Store.Mappings.Latest(ctx)
		require.NoError(t, err)
		assert.Equal(t, latest.Version, again.Version, "nothing changed")
	})

	t.Run("delete restores the upstream value on every pod", func(t *testing.T) {
		res, err := c.DeleteOverride(ctx, "bedrock_invoke", "context-1m-2025-08-07")
		require.NoError(t, err)
		assert.True(t, res.Changed)
		assert.True(t, res.Deleted)
		assert.Equal(t, betasync.Overrides{"anthropic": {"x-beta": nil}}, res.Overrides)
		f.converge(t)
		for i, pod := range f.pods {
			assert.Nil(t, lookup(pod.Current(), "bedrock", "context-1m-2025-08-07"), "pod %d: null upstream again", i)
		}
		res, err = c.DeleteOverride(ctx, "anthropic", "x-beta")
		require.NoError(t, err)
		latest := f.converge(t)
		assert.Equal(t, hashOf(t, docOverrideA), latest.Hash(), "no override left: the upstream document")
		assert.Nil(t, latest.Overrides)
		assert.Empty(t, res.Overrides)
	})
	assert.True(t, f.logs.Contains("action=override.set"))
}

func TestOverrideSurvivesReloadRestartAndRollback(t *testing.T) {
	f := newFleet(t, docOverrideA, 2)
	ctx := t.Context()
	_, err := f.Client.SetOverride(ctx, "anthropic", "x-beta", new("x-pinned"))
	require.NoError(t, err)
	_, err = f.Client.SetOverride(ctx, "bedrock", "new-beta", new("new-beta"))
	require.NoError(t, err)
	withOverrides := f.converge(t)

	t.Run("a reload with an upstream change keeps the overrides", func(t *testing.T) {
		f.Upstream.Set(serve(docOverrideB))
		res, err := f.Client.Reload(ctx)
		require.NoError(t, err)
		assert.True(t, res.Changed)
		latest := f.converge(t)
		assert.Equal(t, betasync.SourceRemote, latest.Source)
		assert.Equal(t, new("x-pinned"), lookup(latest, "anthropic", "x-beta"), "the override wins over the new upstream value")
		assert.Equal(t, new("context-1m"), lookup(latest, "bedrock", "context-1m-2025-08-07"), "the upstream change is applied")
		assert.Equal(t, new("new-beta"), lookup(latest, "bedrock", "new-beta"))
		assert.Equal(t, new("x-beta-v2"), latest.Overrides["anthropic"]["x-beta"].Upstream, "the new upstream value is recorded")
		up, err := latest.Upstream()
		require.NoError(t, err)
		assert.Equal(t, hashOf(t, docOverrideB), up.Hash())
	})

	t.Run("a worker restart keeps them", func(t *testing.T) {
		before := f.converge(t)
		f.stop()
		restarted := time.Now()
		w2 := newWorker(t, f.Node, worker.Config{URL: f.Upstream.URL, CheckInterval: time.Hour, ReplicaID: "r2"})
		run(t, w2)
		// Its own start-up reload (the status in KV still shows the first
		// worker's until then): an override set while it runs may be
		// merged by the reload, and the override then changes nothing.
		waitFor(t, func() bool {
			st, err := w2.Status(ctx)
			return err == nil && st.LastReload != nil && st.LastReload.After(restarted) && st.LockHolder == "r2"
		}, "the restarted worker's start-up reload")
		latest := f.converge(t)
		assert.Equal(t, before.Version, latest.Version, "the start-up reload finds the same content")
		assert.Equal(t, new("x-pinned"), lookup(latest, "anthropic", "x-beta"))
		res, err := w2.SetOverride(ctx, "bedrock_invoke", "advanced-tool-use-2025-11-20", nil)
		require.NoError(t, err)
		assert.True(t, res.Changed)
		f.converge(t)
	})

	t.Run("an older version stored again gets the current overrides", func(t *testing.T) {
		// What a rollback does (the command is not on this branch): merge
		// the overrides in force over an older version's upstream.
		o, _, err := f.Store.Overrides.Get(ctx)
		require.NoError(t, err)
		older, skipped, err := withOverrides.WithOverrides(o)
		require.NoError(t, err)
		assert.Empty(t, skipped)
		latest, err := f.Store.Mappings.Latest(ctx)
		require.NoError(t, err)
		older.Source = "rollback"
		rev, err := f.Store.Mappings.Put(ctx, older, latest.Version)
		require.NoError(t, err)
		older.Version = rev
		require.NoError(t, publisher.Announce(ctx, f.Node.NC, older))
		got := f.converge(t)
		assert.Equal(t, new("x-pinned"), lookup(got, "anthropic", "x-beta"))
		assert.Nil(t, lookup(got, "bedrock", "advanced-tool-use-2025-11-20"), "the override set after that version applies to it")
		assert.Nil(t, lookup(got, "bedrock", "context-1m-2025-08-07"), "the older upstream document is back")
		up, err := got.Upstream()
		require.NoError(t, err)
		assert.Equal(t, hashOf(t, docOverrideA), up.Hash())

		// Deleting an override now restores the older upstream's value.
		_, err = f.Client.DeleteOverride(ctx, "anthropic", "x-beta")
		require.NoError(t, err)
		got = f.converge(t)
		assert.Equal(t, new("x-beta"), lookup(got, "anthropic", "x-beta"))
	})
}

func TestReloadReportsRedundantOverrides(t *testing.T) {
	f := newFleet(t, docOverrideA, 1)
	ctx := t.Context()
	_, err := f.Client.SetOverride(ctx, "bedrock", "context-1m-2025-08-07", new("context-1m"))
	require.NoError(t, err)
	res, err := f.Client.Reload(ctx)
	require.NoError(t, err)
	assert.Empty(t, res.RedundantOverrides, "upstream still says null")

	f.Upstream.Set(serve(docOverrideB)) // now agrees with the override
	res, err = f.Client.Reload(ctx)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, []betasync.OverrideRef{{Provider: "bedrock", Beta: "context-1m-2025-08-07", Value: new("context-1m")}}, res.RedundantOverrides)
	assert.True(t, f.logs.Contains("override is redundant"))

	res, err = f.Client.Reload(ctx)
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Len(t, res.RedundantOverrides, 1, "reported on every reload until deleted")
	f.converge(t)
}

// Reloads and override changes race on two replicas, many rounds at once:
// neither a new upstream document nor an override is ever lost.
func TestOverrideAndReloadRace(t *testing.T) {
	f := newFleet(t, docOverrideA, 2)
	ctx := t.Context()
	other := testbed.Connect(t, f.Server)
	w2 := newWorker(t, other, worker.Config{URL: f.Upstream.URL, CheckInterval: time.Hour, ReplicaID: "r2"})
	const rounds = 25
	for i := range rounds {
		f.Upstream.Set(serve(fmt.Appendf(nil, `{"anthropic": {"round": "round-%d"}, "bedrock": {"context-1m-2025-08-07": null}}`, i)))
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f.Worker.Reload(ctx)
			assert.NoError(t, err, "round %d: reload", i)
		})
		wg.Go(func() {
			_, err := w2.SetOverride(ctx, "bedrock", fmt.Sprintf("race-%d", i), new(fmt.Sprintf("v-%d", i)))
			assert.NoError(t, err, "round %d: override", i)
		})
		wg.Go(func() {
			_, err := f.Worker.SetOverride(ctx, "anthropic", fmt.Sprintf("race-%d", i), nil)
			assert.NoError(t, err, "round %d: override", i)
		})
		wg.Wait()
		latest, err := f.Store.Mappings.Latest(ctx)
		require.NoError(t, err)
		assert.Equal(t, new(fmt.Sprintf("round-%d", i)), lookup(latest, "anthropic", "round"), "round %d: the new upstream document is stored", i)
		for j := 0; j <= i; j++ {
			assert.Equal(t, new(fmt.Sprintf("v-%d", j)), lookup(latest, "bedrock", fmt.Sprintf("race-%d", j)), "round %d: override %d", i, j)
			_, present := latest.Overrides["anthropic"][fmt.Sprintf("race-%d", j)]
			assert.True(t, present, "round %d: null override %d", i, j)
		}
		if t.Failed() {
			return
		}
	}
	latest := f.converge(t)
	o, _, err := f.Store.Overrides.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2*rounds, o.Len())
	assert.Equal(t, latest.Overrides.Values().Len(), o.Len(), "every stored override is in the version")
}

// On a 3-node cluster with 3 bucket replicas, an override set through one
// node reaches pods on the others.
func TestOverridesOnCluster(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	ctx := t.Context()
	nc, js := nodes[0].JetStream(t)
	st, err := kv.Ensure(ctx, js, kv.Config{Replicas: 3, LockTTL: testbed.LockTTL})
	require.NoError(t, err)
	up := newUpstream(t, serve(docOverrideA))
	w := testbed.NewWorker(t, testbed.Node{NC: nc, Store: st}, worker.Config{URL: up.URL, CheckInterval: time.Hour}, worker.Deps{})
	testbed.ServeCommands(t, nc, w, "r1")
	run(t, w)
	var pods []*subscriber.Subscriber
	for _, n := range nodes[1:] {
		sub, err := subscriber.New(n.Connect(t))
		require.NoError(t, err)
		t.Cleanup(sub.Close)
		pods = append(pods, sub)
	}
	client := publisher.NewClient(nodes[2].Connect(t))
	waitFor(t, func() bool {
		latest, err := st.Mappings.Latest(ctx)
		return err == nil && latest.Hash() == hashOf(t, docOverrideA)
	}, "the start-up reload")

	res, err := client.SetOverride(ctx, "bedrock_invoke", "context-1m-2025-08-07", new("context-1m"))
	require.NoError(t, err)
	require.True(t, res.Changed)
	for i, pod := range pods {
		waitFor(t, func() bool { return pod.Current().Version == res.Version }, "pod %d applies the override", i)
		assert.Equal(t, new("context-1m"), lookup(pod.Current(), "bedrock", "context-1m-2025-08-07"))
	}
	// The overrides are replicated: another node reads them.
	js2, err := jetstream.New(nodes[1].Connect(t))
	require.NoError(t, err)
	st2, err := kv.Ensure(ctx, js2, kv.Config{Replicas: 3, LockTTL: testbed.LockTTL})
	require.NoError(t, err)
	o, _, err := st2.Overrides.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, betasync.Overrides{"bedrock": {"context-1m-2025-08-07": new("context-1m")}}, o)

	res, err = client.DeleteOverride(ctx, "bedrock", "context-1m-2025-08-07")
	require.NoError(t, err)
	for i, pod := range pods {
		waitFor(t, func() bool { return pod.Current().Version == res.Version }, "pod %d applies the deletion", i)
		assert.Nil(t, lookup(pod.Current(), "bedrock", "context-1m-2025-08-07"))
	}
}

// TestCorruptOverridesRecord: an overrides record that does not decode
// blocked every reload and override change (503) and start-up. Now the
// overrides the stored version carries stand in for it, and the next
// override change writes a valid record over it, keeping them.
func TestCorruptOverridesRecord(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	var flip atomic.Bool
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if flip.Load() {
			serve(docSmall)(w, r)
		} else {
			serve(docUpstream)(w, r)
		}
	})
	var log logs
	w := newWorker(t, n, worker.Config{URL: up.URL, Logger: log.Logger()})
	ctx := t.Context()
	_, err := w.Reload(ctx)
	require.NoError(t, err)
	_, err = w.SetOverride(ctx, "bedrock", "context-1m-2025-08-07", nil)
	require.NoError(t, err)

	js, err := jetstream.New(n.NC)
	require.NoError(t, err)
	state, err := js.KeyValue(ctx, kv.BucketState)
	require.NoError(t, err)
	_, err = state.Put(ctx, kv.KeyOverrides, []byte(`not json`))
	require.NoError(t, err)

	flip.Store(true)
	res, err := w.Reload(ctx)
	require.NoError(t, err, "a reload is not blocked")
	assert.True(t, res.Changed)
	assert.True(t, log.Contains("the overrides record is corrupt"))
	latest, err := n.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Contains(t, latest.Overrides.Values()["bedrock"], "context-1m-2025-08-07", "the override still applies")

	_, err = w.SetOverride(ctx, "anthropic", "context-1m-2025-08-07", nil)
	require.NoError(t, err, "an override change repairs the record")
	list, err := w.ListOverrides(ctx)
	require.NoError(t, err)
	assert.Contains(t, list.Overrides["bedrock"], "context-1m-2025-08-07", "the recovered override is kept")
	assert.Contains(t, list.Overrides["anthropic"], "context-1m-2025-08-07")
}
