package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
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

func mappingOf(t *testing.T, doc []byte) *betasync.Mapping {
	t.Helper()
	m, err := betasync.Parse(doc)
	require.NoError(t, err)
	return m
}

// pods starts n subscribers, each on its own connection to one of srvs
// (round robin), as n pods would embed them.
func pods(t *testing.T, n int, srvs ...*natstest.Server) []*subscriber.Subscriber {
	t.Helper()
	var out []*subscriber.Subscriber
	for i := range n {
		s, err := subscriber.New(srvs[i%len(srvs)].Connect(t))
		require.NoError(t, err)
		t.Cleanup(s.Close)
		out = append(out, s)
	}
	return out
}

// allOn waits until every pod serves version with hash.
func allOn(t *testing.T, subs []*subscriber.Subscriber, version uint64, hash string) {
	t.Helper()
	for i, s := range subs {
		waitFor(t, func() bool {
			cur := s.Current()
			return cur.Version == version && cur.Hash() == hash
		}, "pod %d applies version %d", i, version)
	}
}

func versionsOf(h betasync.HistoryResult) []uint64 {
	out := []uint64{}
	for _, e := range h.Versions {
		out = append(out, e.Version)
	}
	return out
}

// TestHistoryAndRollback runs the whole flow over the bus: three reloads,
// the history, one version, a rollback that every pod applies, a rollback
// to the current document, an unknown version, and the audit trail.
func TestHistoryAndRollback(t *testing.T) {
	var l logs
	s := testbed.NewStack(t, serve(docSmall), worker.Config{Logger: l.Logger()}, worker.Deps{})
	subs := pods(t, 3, s.Server)
	alice := betasync.WithActor(t.Context(), betasync.Actor{Name: "alice", Addr: "10.0.0.1:5555"})

	docs := [][]byte{docSmall, docUpstream, docOther}
	for i, doc := range docs {
		s.Upstream.Set(serve(doc))
		res, err := s.Client.Reload(alice)
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Equal(t, uint64(i+1), res.Version)
		if i == 0 {
			assert.Nil(t, res.Changes, "the first version has nothing before it")
		} else {
			assert.Equal(t, betasync.Diff(mappingOf(t, docs[i-1]), mappingOf(t, doc)), res.Changes)
			assert.NotEmpty(t, res.Changes)
		}
	}
	allOn(t, subs, 3, hashOf(t, docOther))
	assert.Equal(t, "alice", subs[0].Current().Actor, "config.updated carries the actor")
	assert.Equal(t, betasync.Diff(mappingOf(t, docUpstream), mappingOf(t, docOther)), subs[0].Current().Changes,
		"config.updated carries the changes")

	t.Run("history", func(t *testing.T) {
		h, err := s.Client.History(t.Context(), 0)
		require.NoError(t, err)
		assert.Equal(t, []uint64{3, 2, 1}, versionsOf(h), "newest first")
		assert.Equal(t, []uint64{1, 2, 3}, h.Kept)
		assert.Equal(t, uint64(3), h.Current)
		assert.Equal(t, 3, h.Count)
		for _, e := range h.Versions {
			assert.Equal(t, "alice", e.Actor)
			assert.Equal(t, betasync.SourceRemote, e.Source)
			assert.False(t, e.FetchedAt.IsZero())
		}
		assert.Equal(t, hashOf(t, docUpstream), h.Versions[1].Hash)
		assert.Equal(t, betasync.Diff(mappingOf(t, docSmall), mappingOf(t, docUpstream)), h.Versions[1].Changes)
		assert.Nil(t, h.Versions[2].Changes)

		h, err = s.Client.History(t.Context(), 2)
		require.NoError(t, err)
		assert.Equal(t, []uint64{3, 2}, versionsOf(h))
		assert.Equal(t, []uint64{1, 2, 3}, h.Kept, "the kept versions, whatever the limit")

		_, err = s.Client.History(t.Context(), -1)
		requireCode(t, err, betasync.EINVALID, "limit")
	})

	t.Run("one version", func(t *testing.T) {
		v, err := s.Client.HistoryVersion(t.Context(), 2)
		require.NoError(t, err)
		assert.Equal(t, uint64(2), v.Version)
		assert.Equal(t, hashOf(t, docUpstream), v.Hash())
		assert.Equal(t, "alice", v.Actor)
		_, err = s.Client.HistoryVersion(t.Context(), 42)
		requireCode(t, err, betasync.ENOTFOUND, "version 42", "versions kept: 1-3")
	})

	t.Run("rollback", func(t *testing.T) {
		res, err := s.Client.Rollback(alice, 1)
		require.NoError(t, err)
		assert.True(t, res.Changed)
		assert.Equal(t, uint64(4), res.Version)
		assert.Equal(t, uint64(1), res.RolledBackFrom)
		assert.Equal(t, betasync.SourceRollback, res.Source)
		assert.Equal(t, hashOf(t, docSmall), res.Hash)
		assert.Equal(t, betasync.Diff(mappingOf(t, docOther), mappingOf(t, docSmall)), res.Changes)
		allOn(t, subs, 4, hashOf(t, docSmall))
		for _, p := range subs {
			cur := p.Current()
			assert.Equal(t, betasync.SourceRollback, cur.Source)
			assert.Equal(t, uint64(1), cur.RolledBackFrom)
		}

		again, err := s.Client.Rollback(alice, 1)
		require.NoError(t, err)
		assert.False(t, again.Changed, "the current document already is version 1's")
		assert.Equal(t, uint64(4), again.Version)
		assert.Nil(t, again.Changes)

		h, err := s.Client.History(t.Context(), 1)
		require.NoError(t, err)
		require.Len(t, h.Versions, 1)
		assert.Equal(t, uint64(1), h.Versions[0].RolledBackFrom)
		assert.Equal(t, "alice", h.Versions[0].Actor)

		_, err = s.Client.Rollback(alice, 99)
		requireCode(t, err, betasync.ENOTFOUND, "version 99", "versions kept: 1-4")
		_, err = s.Worker.Rollback(alice, 0)
		requireCode(t, err, betasync.EINVALID, "version")
	})

	t.Run("raw bus requests", func(t *testing.T) {
		msg := testbed.Request(t, s.NC, publisher.SubjectHistory, []byte(`{"limit": "1"}`))
		var h betasync.HistoryResult
		require.NoError(t, json.Unmarshal(msg.Data, &h), "%s", msg.Data)
		assert.Equal(t, []uint64{4}, versionsOf(h))

		for payload, code := range map[string]string{
			`{}`:                 "422",
			`{"version": "x"}`:   "422",
			`{"version": 0}`:     "400",
			`{"version": 1000}`:  "404",
			`[1]`:                "400",
			`{"version": "1.5"}`: "422",
		} {
			msg := testbed.Request(t, s.NC, publisher.SubjectRollback, []byte(payload))
			assert.Equal(t, code, msg.Header.Get("Nats-Service-Error-Code"), "payload %s: %s", payload, msg.Data)
		}
		msg = testbed.Request(t, s.NC, publisher.SubjectHistoryGet, []byte(`{"version": 2}`))
		var v betasync.Snapshot
		require.NoError(t, json.Unmarshal(msg.Data, &v), "the reply is an envelope: %s", msg.Data)
		assert.Equal(t, uint64(2), v.Version)

		// A bus request that names nobody is recorded as "nats".
		msg = testbed.Request(t, s.NC, publisher.SubjectRollback, []byte(`{"version": 2}`))
		var res betasync.RollbackResult
		require.NoError(t, json.Unmarshal(msg.Data, &res), "%s", msg.Data)
		assert.Equal(t, uint64(5), res.Version)
		h, err := s.Client.History(t.Context(), 1)
		require.NoError(t, err)
		assert.Equal(t, publisher.ActorNATS, h.Versions[0].Actor)
	})

	t.Run("audit", func(t *testing.T) {
		assert.True(t, l.Contains(`msg="admin action" audit=true action=rollback actor=alice addr=10.0.0.1:5555 outcome=ok rolled_back_from=1 version=4 changed=true`), l.buf.String())
		assert.True(t, l.Contains(`action=rollback actor=alice addr=10.0.0.1:5555 outcome=error code=not_found`))
		assert.True(t, l.Contains(`action=reload actor=alice addr=10.0.0.1:5555 outcome=ok version=3 changed=true`))
		assert.True(t, l.Contains(`action=rollback actor=nats outcome=ok rolled_back_from=2 version=5`))
	})
}

// TestRollbackToAPurgedVersion: the bucket keeps only History versions; a
// version purged from it is a 404 that names what is kept.
func TestRollbackToAPurgedVersion(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.JetStream(t)
	st, err := kv.Ensure(t.Context(), js, kv.Config{History: 32, LockTTL: testbed.LockTTL})
	require.NoError(t, err)
	up := newUpstream(t, serve(docSmall))
	w := testbed.NewWorker(t, testbed.Node{NC: nc, Store: st}, worker.Config{URL: up.URL}, worker.Deps{})
	for i := range 34 {
		up.Set(serve([][]byte{docSmall, docOther}[i%2]))
		_, err := w.Reload(t.Context())
		require.NoError(t, err)
	}
	h, err := w.History(t.Context(), 64)
	require.NoError(t, err)
	assert.Len(t, h.Versions, 32)
	assert.Equal(t, uint64(3), h.Kept[0], "versions 1 and 2 were purged")
	assert.Equal(t, uint64(34), h.Current)

	_, err = w.Rollback(t.Context(), 1)
	requireCode(t, err, betasync.ENOTFOUND, "version 1 ", "versions kept: 3-34")
	_, err = w.HistoryVersion(t.Context(), 2)
	requireCode(t, err, betasync.ENOTFOUND, "versions kept: 3-34")
	res, err := w.Rollback(t.Context(), 3)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, uint64(35), res.Version)
}

// TestRollbackAfterRestart: the history is in KV, so a new worker on a
// restarted server lists it and rolls back to it.
func TestRollbackAfterRestart(t *testing.T) {
	dir := t.TempDir()
	up := newUpstream(t, serve(docSmall))
	srv := natstest.StartAt(t, "127.0.0.1:-1", dir)
	first := newWorker(t, connect(t, srv), worker.Config{URL: up.URL})
	for _, doc := range [][]byte{docSmall, docUpstream} {
		up.Set(serve(doc))
		_, err := first.Reload(t.Context())
		require.NoError(t, err)
	}
	srv.Stop()

	srv = natstest.StartAt(t, "127.0.0.1:-1", dir)
	subs := pods(t, 2, srv)
	w := newWorker(t, connect(t, srv), worker.Config{URL: up.URL, ReplicaID: "r2"})
	h, err := w.History(t.Context(), 0)
	require.NoError(t, err)
	assert.Equal(t, []uint64{2, 1}, versionsOf(h))

	res, err := w.Rollback(t.Context(), 1)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), res.Version)
	allOn(t, subs, 3, hashOf(t, docSmall))
}

// TestRollbackOnCluster: on a 3-node cluster with replicated buckets, a
// rollback sent from one node is stored and applied by pods on every node.
func TestRollbackOnCluster(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	nc, js := nodes[0].JetStream(t)
	st, err := kv.Ensure(t.Context(), js, kv.Config{Replicas: 3, LockTTL: testbed.LockTTL})
	require.NoError(t, err)
	up := newUpstream(t, serve(docSmall))
	w := testbed.NewWorker(t, testbed.Node{NC: nc, Store: st}, worker.Config{URL: up.URL}, worker.Deps{})
	testbed.ServeCommands(t, nc, w, "r1")
	subs := pods(t, 3, nodes...)
	client := publisher.NewClient(nodes[2].Connect(t))

	for _, doc := range [][]byte{docSmall, docUpstream} {
		up.Set(serve(doc))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		_, err := client.Reload(ctx)
		cancel()
		require.NoError(t, err)
	}
	allOn(t, subs, 2, hashOf(t, docUpstream))
	res, err := client.Rollback(t.Context(), 1)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	allOn(t, subs, 3, hashOf(t, docSmall))

	// Read from another node's view of the bucket.
	_, js2 := nodes[1].JetStream(t)
	b, err := js2.KeyValue(t.Context(), kv.BucketConfig)
	require.NoError(t, err)
	e, err := b.Get(t.Context(), kv.KeyMapping)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), e.Revision())
	assert.Equal(t, jetstream.KeyValuePut, e.Operation())
	assert.Contains(t, string(e.Value()), fmt.Sprintf(`"rolled_back_from":%d`, 1))
}
