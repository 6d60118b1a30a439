package worker_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/worker"
)

// TestNodeLossCostsNoCommand reproduces the outside test: losing one NATS
// node of three cost 2-7 failed reloads (503 "no response from stream" for
// 4-5.5 s while JetStream elected new stream leaders). Now the worker waits
// for the new leader within the command's deadline: admin commands sent
// while the node holding the stream leaders dies all succeed.
func TestNodeLossCostsNoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster and a leader election")
	}
	nodes := natstest.StartCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}
	all := strings.Join(urls, ",")
	n := testbed.ConnectConfig(t, all, kv.Config{Replicas: 3, LockTTL: time.Second})
	var flip atomic.Bool
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if flip.Load() {
			serve(docSmall)(w, r)
		} else {
			serve(docUpstream)(w, r)
		}
	})
	w := newWorker(t, n, worker.Config{URL: up.URL})
	testbed.ServeCommands(t, n.NC, w, "r1")
	cnc, err := nats.Connect(all, nats.ReconnectWait(100*time.Millisecond), nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(cnc.Close)
	client := publisher.NewClient(cnc)
	_, err = client.Reload(t.Context())
	require.NoError(t, err)

	// The node leading the mapping stream; its loss forces an election.
	js, err := jetstream.New(cnc)
	require.NoError(t, err)
	stream, err := js.Stream(t.Context(), "KV_"+kv.BucketConfig)
	require.NoError(t, err)
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	var leader *natstest.Server
	for _, node := range nodes {
		if node.Name() == info.Cluster.Leader {
			leader = node
		}
	}
	require.NotNil(t, leader, "leader %q", info.Cluster.Leader)

	stop := make(chan struct{})
	results := make(chan error, 1024)
	go func() {
		defer close(results)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var err error
			switch i % 3 {
			case 0:
				flip.Store(!flip.Load())
				_, err = client.Reload(ctx)
			case 1:
				_, err = client.SetSchedule(ctx, float64(1+i%24))
			default:
				_, err = client.Status(ctx)
			}
			cancel()
			results <- err
		}
	}()
	time.Sleep(300 * time.Millisecond) // some commands before the loss
	leader.Stop()
	time.Sleep(8 * time.Second) // the election, and commands after it
	close(stop)

	var ok, failed int
	for err := range results {
		if assert.NoError(t, err, "a command failed during the node loss") {
			ok++
		} else {
			failed++
		}
	}
	t.Logf("%d commands around the loss of %s, %d failed", ok+failed, info.Cluster.Leader, failed)
	assert.Greater(t, ok, 3, "commands ran through the election")
}
