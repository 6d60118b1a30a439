package subscriber_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
)

// TestLeafPodReadsKVThroughTheHubDomain runs a region: a hub with JetStream
// in domain "hub" and a leaf node without JetStream. A pod on the leaf,
// given the domain, reads the stored version from KV (the catch-up path)
// and receives announcements across the leaf connection.
func TestLeafPodReadsKVThroughTheHubDomain(t *testing.T) {
	r := startRegion(t, "")
	store := ensure(t, r.js)
	version := put(t, store, doc(t, 1), 0)

	p := newPod(t, r.connectLeaf(t), subscriber.WithJetStreamDomain("hub"))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, p.WaitReady(ctx), "the pod behind the leaf reads KV through the hub's domain")
	assert.Equal(t, version, p.Current().Version)

	announce(t, r.hubConn, doc(t, 2), version+1)
	assert.Equal(t, version+1, p.waitVersion(t, version+1).Version)
}

// TestLeafPodCatchesUpAfterAnOutage cuts a leaf node off from its hub while
// a version is stored and announced: the pod behind the leaf misses the
// announcement. Once the link is back, the worker's next beacon names the
// stored version and the pod reads it from KV, long before its resync
// (an hour here) would have.
func TestLeafPodCatchesUpAfterAnOutage(t *testing.T) {
	r := startRegion(t, "proxied")
	store := ensure(t, r.js)
	v1 := put(t, store, doc(t, 1), 0)
	p := newPod(t, r.connectLeaf(t), subscriber.WithJetStreamDomain("hub"), subscriber.WithResyncInterval(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, p.WaitReady(ctx))
	require.Equal(t, v1, p.Current().Version)

	r.link.Cut()
	require.Eventually(t, func() bool { return r.leaf.NumLeafNodes() == 0 }, waitFor, 10*time.Millisecond)
	v2 := put(t, store, doc(t, 2), v1)
	announce(t, r.hubConn, doc(t, 2), v2) // lost: the leaf is cut off
	resyncs := p.Stats().Resyncs

	r.link.Restore()
	require.Eventually(t, func() bool { return r.leaf.NumLeafNodes() == 1 }, waitFor, 10*time.Millisecond)
	assert.Equal(t, v1, p.Current().Version, "the announcement was lost with the link")
	stored, err := store.Latest(t.Context())
	require.NoError(t, err)
	// The worker beacons every check interval; here the test does, until
	// the leaf has the hub's interest in config.current again.
	require.Eventually(t, func() bool {
		require.NoError(t, publisher.PublishBeacon(r.hubConn, stored.Version, stored.Hash()))
		return p.Current().Version == v2
	}, waitFor, 50*time.Millisecond, "the pod catches up from KV after the beacon")
	assert.Equal(t, stored.Hash(), p.Current().Hash())
	assert.Greater(t, p.Stats().Resyncs, resyncs, "from KV, not from an event")
}

// region is a hub with JetStream in domain "hub" and a leaf node without
// JetStream, linked directly or through a proxy that can cut the link.
type region struct {
	hub, leaf *server.Server
	link      *testbed.Proxy // nil unless proxied
	hubConn   *nats.Conn
	js        jetstream.JetStream
}

func startRegion(t *testing.T, proxied string) *region {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	leafPort := ln.Addr().(*net.TCPAddr).Port //nolint:errcheck,forcetypeassert // a TCP listener
	require.NoError(t, ln.Close())

	start := func(opts *server.Options) *server.Server {
		s, err := server.NewServer(opts)
		require.NoError(t, err)
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		require.True(t, s.ReadyForConnections(10*time.Second))
		return s
	}
	r := &region{}
	r.hub = start(&server.Options{
		ServerName: "hub", Host: "127.0.0.1", Port: -1, NoSigs: true,
		JetStream: true, JetStreamDomain: "hub", StoreDir: t.TempDir(),
		// NoAdvertise: a proxied leaf must not learn the hub's own address
		// and reconnect around the proxy.
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort, NoAdvertise: proxied != ""},
	})
	remote := fmt.Sprintf("nats://127.0.0.1:%d", leafPort)
	if proxied != "" {
		r.link = testbed.NewProxy(t, fmt.Sprintf("127.0.0.1:%d", leafPort))
		remote = r.link.URL()
	}
	r.leaf = start(&server.Options{
		ServerName: "region", Host: "127.0.0.1", Port: -1, NoSigs: true,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 50 * time.Millisecond,
			Remotes:           []*server.RemoteLeafOpts{{URLs: server.RoutesFromStr(remote)}},
		},
	})
	require.Eventually(t, func() bool { return r.leaf.NumLeafNodes() == 1 }, 10*time.Second, 10*time.Millisecond)

	r.hubConn, err = nats.Connect(r.hub.ClientURL())
	require.NoError(t, err)
	t.Cleanup(r.hubConn.Close)
	r.js, err = jetstream.New(r.hubConn)
	require.NoError(t, err)
	return r
}

func (r *region) connectLeaf(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(r.leaf.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}
