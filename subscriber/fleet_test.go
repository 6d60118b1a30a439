package subscriber_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
)

// window is the fleet collection window of these tests: every pod is local.
const window = 200 * time.Millisecond

// collect sends one request on subject and returns the first n answers.
func collect(t *testing.T, nc *nats.Conn, subject string, n int) []*nats.Msg {
	t.Helper()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, nc.PublishRequest(subject, inbox, nil))
	var msgs []*nats.Msg
	for range n {
		msg, err := sub.NextMsgWithContext(busCtx(t))
		require.NoError(t, err, "answer %d of %d on %s", len(msgs)+1, n, subject)
		msgs = append(msgs, msg)
	}
	return msgs
}

func TestPodAnswersTheFleetQuery(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	a := newPod(t, srv.Connect(t), subscriber.WithPodID("pod-a"))
	b := newPod(t, srv.Connect(t), subscriber.WithPodID("pod-b"))
	assert.Equal(t, "pod-a", a.PodID())

	announce(t, nc, doc(t, 1), 1)
	a.waitVersion(t, 1)
	b.waitVersion(t, 1)

	pods, err := publisher.Fleet(busCtx(t), nc, window)
	require.NoError(t, err)
	require.Len(t, pods, 2)
	byID := map[string]betasync.PodStatus{}
	for _, p := range pods {
		byID[p.Pod] = p
	}
	for _, p := range []*pod{a, b} {
		got := byID[p.PodID()]
		cur := p.Current()
		assert.Equal(t, uint64(1), got.Version)
		assert.Equal(t, cur.Hash(), got.Hash)
		assert.Equal(t, betasync.SourceRemote, got.Source)
		assert.True(t, cur.AppliedAt.Equal(got.AppliedAt))
		if assert.NotNil(t, got.FetchedAt) {
			assert.True(t, cur.FetchedAt.Equal(*got.FetchedAt))
		}
		assert.Nil(t, got.LastRejected)
	}
}

func TestPodRecordsTheLastRejectedVersion(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	p := newPod(t, srv.Connect(t), subscriber.WithPodID("pod-a"))
	announce(t, nc, doc(t, 1), 1)
	p.waitVersion(t, 1)

	// A stale or duplicate event is routine: counted, not recorded.
	announce(t, nc, doc(t, 1), 1)
	require.Eventually(t, func() bool { return p.Stats().Stale == 1 }, waitFor, time.Millisecond)
	assert.Nil(t, p.Status().LastRejected)

	tests := []struct {
		name    string
		data    []byte
		version uint64
		reason  string
	}{
		{"forged: the hash does not match", tamper(t, envelope(doc(t, 2), 2), func(f map[string]any) { f["hash"] = "forged" }), 2, `envelope hash "forged" does not match`},
		{"invalid document", tamper(t, envelope(doc(t, 3), 3), func(f map[string]any) { f["config"] = map[string]any{"bedrock": 1} }), 3, `provider "bedrock"`},
		{"not an envelope", []byte(`[1, 2`), 0, "not a mapping envelope"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			publish(t, nc, publisher.SubjectConfigUpdated, tt.data)
			require.Eventually(t, func() bool { return p.Stats().Invalid == uint64(i+1) }, waitFor, time.Millisecond)

			pods, err := publisher.Fleet(busCtx(t), nc, window)
			require.NoError(t, err)
			require.Len(t, pods, 1)
			got := pods[0]
			assert.Equal(t, uint64(1), got.Version, "the last good version keeps serving")
			require.NotNil(t, got.LastRejected)
			assert.Equal(t, tt.version, got.LastRejected.Version)
			assert.Contains(t, got.LastRejected.Reason, tt.reason)
			assert.Equal(t, "event", got.LastRejected.Via)
			assert.False(t, got.LastRejected.At.IsZero())
		})
	}
}

// TestPodDiscovery checks what `nats micro ls` and `nats micro info
// betasync_pod` see: one betasync_pod instance per pod, its id in the
// metadata, and the status endpoint without a queue group.
func TestPodDiscovery(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	const n = 5
	for i := range n {
		newPod(t, srv.Connect(t), subscriber.WithPodID(fmt.Sprintf("pod-%d", i)))
	}
	newPod(t, srv.Connect(t), subscriber.WithPodID("hidden"), subscriber.WithoutFleet())

	ping, err := micro.ControlSubject(micro.PingVerb, publisher.PodServiceName, "")
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, msg := range collect(t, nc, ping, n) {
		var p micro.Ping
		require.NoError(t, json.Unmarshal(msg.Data, &p))
		assert.Equal(t, publisher.PodServiceName, p.Name)
		ids[p.Metadata["pod"]] = true
	}
	assert.Len(t, ids, n, "one answer per pod: %v", ids)
	assert.NotContains(t, ids, "hidden")

	info, err := micro.ControlSubject(micro.InfoVerb, publisher.PodServiceName, "")
	require.NoError(t, err)
	var in micro.Info
	require.NoError(t, json.Unmarshal(collect(t, nc, info, 1)[0].Data, &in))
	assert.Equal(t, "betasync pod "+in.Metadata["pod"]+": the anthropic-beta mapping version this pod serves", in.Description,
		"nats micro ls shows the description: it names the pod")
	require.Len(t, in.Endpoints, 1)
	assert.Equal(t, "status", in.Endpoints[0].Name)
	assert.Equal(t, publisher.SubjectPodStatus, in.Endpoints[0].Subject)
	assert.Empty(t, in.Endpoints[0].QueueGroup, "every pod answers: no queue group")

	pods, err := publisher.Fleet(busCtx(t), nc, window)
	require.NoError(t, err)
	assert.Len(t, pods, n, "the pod WithoutFleet does not answer")
}

func TestClosedPodLeavesTheFleet(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	a := newPod(t, srv.Connect(t), subscriber.WithPodID("pod-a"))
	newPod(t, srv.Connect(t), subscriber.WithPodID("pod-b"))
	a.Close()
	a.Close() // safe twice

	pods, err := publisher.Fleet(busCtx(t), nc, window)
	require.NoError(t, err)
	require.Len(t, pods, 1)
	assert.Equal(t, "pod-b", pods[0].Pod)
	assert.Equal(t, uint64(0), pods[0].Version, "the embedded default: nothing is stored")
	assert.Equal(t, betasync.SourceEmbedded, pods[0].Source)
	assert.Nil(t, pods[0].FetchedAt)
}

func TestDefaultPodID(t *testing.T) {
	srv := natstest.Start(t)
	p := newPod(t, srv.Connect(t))
	assert.Regexp(t, `^.+-\d+$`, p.PodID(), "<hostname>-<pid>")
}

// A forged version that validates is applied, then replaced at the next
// resync because KV does not hold it: the fleet view shows it as rejected.
func TestPodRecordsAVersionKVDoesNotHold(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	store := ensure(t, js)
	v1 := put(t, store, doc(t, 1), 0)
	p := newPod(t, srv.Connect(t), subscriber.WithPodID("pod-a"), subscriber.WithResyncInterval(100*time.Millisecond))
	p.waitVersion(t, v1)

	announce(t, srv.Connect(t), doc(t, 666), 1000)
	p.waitVersion(t, 1000)
	p.waitVersion(t, v1)
	got := p.Status().LastRejected
	require.NotNil(t, got)
	assert.Equal(t, uint64(1000), got.Version)
	assert.Equal(t, "resync", got.Via)
	assert.Contains(t, got.Reason, "is not the one stored in KV")
}

// A stored version the pod refuses (here: unsigned, and the pod trusts a
// key) is recorded with the revision KV holds, the version it claimed.
func TestPodRecordsTheRevisionOfARejectedStoredVersion(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.JetStream(t)
	v1 := put(t, ensure(t, js), doc(t, 1), 0)
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	v, err := betasync.NewVerifier(pub)
	require.NoError(t, err)
	p := newPod(t, srv.Connect(t), subscriber.WithPodID("pod-a"), subscriber.WithVerifier(v))

	require.Eventually(t, func() bool { return p.Status().LastRejected != nil }, waitFor, time.Millisecond)
	got := p.Status().LastRejected
	assert.Equal(t, v1, got.Version)
	assert.Equal(t, "kv", got.Via)
	assert.Contains(t, got.Reason, "is not signed")
	assert.Equal(t, uint64(0), p.Status().Version, "the embedded default keeps serving")
}
