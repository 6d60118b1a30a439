package worker_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

// fleetPods is how many in-process pods TestFleetView runs; set
// BETASYNC_TEST_FLEET_PODS to measure a bigger fleet (1000 works).
func fleetPods(t *testing.T) int {
	if v := os.Getenv("BETASYNC_TEST_FLEET_PODS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return n
	}
	return 200
}

// startPods starts n subscribers, each on its own connection, a few at a
// time, and waits until every one serves a version read from the bus.
// opts gives pod i its options beyond its id.
func startPods(t *testing.T, srv *natstest.Server, n int, opts func(i int) []subscriber.Option) []*subscriber.Subscriber {
	t.Helper()
	var (
		pods  = make([]*subscriber.Subscriber, n)
		conns = make([]*nats.Conn, n)
		errs  = make([]error, n)
		next  = make(chan int)
		wg    sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				nc, err := nats.Connect(srv.ClientURL())
				if err != nil {
					errs[i] = err
					continue
				}
				conns[i] = nc
				o := append([]subscriber.Option{subscriber.WithPodID(fmt.Sprintf("pod-%04d", i))}, opts(i)...)
				if pods[i], errs[i] = subscriber.New(nc, o...); errs[i] != nil {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				errs[i] = pods[i].WaitReady(ctx)
				cancel()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Cleanup(func() {
		for i := range n {
			if pods[i] != nil {
				pods[i].Close()
			}
			if conns[i] != nil {
				conns[i].Close()
			}
		}
	})
	for i, err := range errs {
		require.NoError(t, err, "pod %d", i)
	}
	return pods
}

// fleetView asks for the fleet view over NATS, as the HTTP API does, and logs
// how long the collection took.
func fleetView(t *testing.T, c *publisher.Client) betasync.FleetView {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	v, err := c.Fleet(ctx)
	require.NoError(t, err)
	t.Logf("fleet view of %d pods in %s (window %d ms)", v.Count, time.Since(start).Round(time.Millisecond), v.WindowMS)
	return v
}

func TestFleetView(t *testing.T) {
	var s *testbed.Stack
	s = testbed.NewStack(t, serve(docSmall), worker.Config{}, worker.Deps{
		Fleet: func(ctx context.Context) ([]betasync.PodStatus, error) {
			return publisher.Fleet(ctx, s.Node.NC, 0)
		},
	})
	r, err := s.Worker.Reload(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.Version)

	// Every tenth pod misses the announcements (it listens elsewhere), as
	// a pod cut off from config.updated would: it holds what it read from
	// KV at start until its next resync.
	n := fleetPods(t)
	held := func(i int) bool { return i%10 == 3 }
	pods := startPods(t, s.Server, n, func(i int) []subscriber.Option {
		if held(i) {
			return []subscriber.Option{subscriber.WithSubject("betasync.test.nowhere"), subscriber.WithResyncInterval(time.Hour)}
		}
		return nil
	})

	v := fleetView(t, s.Client)
	require.Equal(t, n, v.Count)
	assert.Len(t, v.Pods, n)
	assert.True(t, v.Converged)
	assert.Equal(t, uint64(1), v.NewestVersion)
	assert.Empty(t, v.Lagging)
	assert.Equal(t, int64(betasync.DefaultFleetWindow/time.Millisecond), v.WindowMS)
	assert.True(t, slices.IsSortedFunc(v.Pods, func(a, b betasync.PodStatus) int { return cmp.Compare(a.Pod, b.Pod) }))
	assert.Equal(t, "pod-0000", v.Pods[0].Pod)
	assert.Equal(t, hashOf(t, docSmall), v.Pods[0].Hash)

	// A new version: the held pods lag.
	s.Upstream.Set(serve(docOther))
	r, err = s.Worker.Reload(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(2), r.Version)
	var lagging []string
	for i, p := range pods {
		if held(i) {
			lagging = append(lagging, p.PodID())
			continue
		}
		waitFor(t, func() bool { return p.Current().Version == 2 }, "pod %d applies version 2", i)
	}
	v = fleetView(t, s.Client)
	assert.Equal(t, n, v.Count)
	assert.False(t, v.Converged)
	assert.Equal(t, uint64(2), v.NewestVersion)
	assert.Equal(t, lagging, v.Lagging)

	// A forged version 3: every pod that hears it refuses it, and says so.
	forged := []byte(fmt.Sprintf(`{"version": 3, "hash": "forged", "source": "remote", "fetched_at": "2026-03-01T12:00:00Z", "config": %s}`, docSmall))
	require.NoError(t, s.NC.Publish(publisher.SubjectConfigUpdated, forged))
	require.NoError(t, s.NC.Flush())
	for i, p := range pods {
		if !held(i) {
			waitFor(t, func() bool { return p.Stats().Invalid == 1 }, "pod %d refuses the forged version", i)
		}
	}
	v = fleetView(t, s.Client)
	assert.Equal(t, uint64(2), v.NewestVersion, "the forged version is served nowhere")
	for i, p := range v.Pods {
		if held(i) {
			assert.Nil(t, p.LastRejected, p.Pod)
			continue
		}
		if assert.NotNil(t, p.LastRejected, p.Pod) {
			assert.Equal(t, uint64(3), p.LastRejected.Version)
			assert.Contains(t, p.LastRejected.Reason, `envelope hash "forged" does not match`)
		}
	}

	// Pods that stop answer no more.
	for _, p := range pods[:10] {
		p.Close()
	}
	v = fleetView(t, s.Client)
	assert.Equal(t, n-10, v.Count)
	assert.Equal(t, "pod-0010", v.Pods[0].Pod)
}

func TestFleetNotConfigured(t *testing.T) {
	s := testbed.NewStack(t, serve(docSmall), worker.Config{ReplicaID: "r7"}, worker.Deps{})
	_, err := s.Client.Fleet(t.Context())
	requireCode(t, err, betasync.EUNAVAILABLE, "fleet view is not configured", "r7")
}
