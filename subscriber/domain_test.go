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

	"github.com/betasync/betasync/subscriber"
)

// TestLeafPodReadsKVThroughTheHubDomain runs a region: a hub with JetStream
// in domain "hub" and a leaf node without JetStream. A pod on the leaf,
// given the domain, reads the stored version from KV (the catch-up path)
// and receives announcements across the leaf connection.
func TestLeafPodReadsKVThroughTheHubDomain(t *testing.T) {
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
	hub := start(&server.Options{
		ServerName: "hub", Host: "127.0.0.1", Port: -1, NoSigs: true,
		JetStream: true, JetStreamDomain: "hub", StoreDir: t.TempDir(),
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort},
	})
	leaf := start(&server.Options{
		ServerName: "region", Host: "127.0.0.1", Port: -1, NoSigs: true,
		LeafNode: server.LeafNodeOpts{Remotes: []*server.RemoteLeafOpts{{URLs: server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", leafPort))}}},
	})
	require.Eventually(t, func() bool { return leaf.NumLeafNodes() == 1 }, 10*time.Second, 10*time.Millisecond)

	hubConn, err := nats.Connect(hub.ClientURL())
	require.NoError(t, err)
	t.Cleanup(hubConn.Close)
	js, err := jetstream.New(hubConn)
	require.NoError(t, err)
	store := ensure(t, js)
	version := put(t, store, doc(t, 1), 0)

	leafConn, err := nats.Connect(leaf.ClientURL())
	require.NoError(t, err)
	t.Cleanup(leafConn.Close)
	p := newPod(t, leafConn, subscriber.WithJetStreamDomain("hub"))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, p.WaitReady(ctx), "the pod behind the leaf reads KV through the hub's domain")
	assert.Equal(t, version, p.Current().Version)

	announce(t, hubConn, doc(t, 2), version+1)
	assert.Equal(t, version+1, p.waitVersion(t, version+1).Version)
}
