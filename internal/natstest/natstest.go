// Package natstest starts real embedded nats-servers for tests: a random
// port, JetStream in a temporary directory, shut down by t.Cleanup.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/embednats"
)

// Server is a running test server.
type Server struct {
	*server.Server
	StoreDir string
}

// Start runs a server on a random port with JetStream in t.TempDir().
func Start(t testing.TB) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:-1", t.TempDir())
}

// StartWithMaxPayload runs a server like Start whose message size limit is
// limit bytes, for tests of documents too big for the bus.
func StartWithMaxPayload(t testing.TB, limit int32) *Server {
	t.Helper()
	srv, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), MaxPayload: limit})
	require.NoError(t, err)
	s := &Server{Server: srv}
	t.Cleanup(s.Stop)
	return s
}

// StartWithPingInterval runs a server like Start that drops a client after
// about three unanswered pings at interval, for tests of stalled clients.
func StartWithPingInterval(t testing.TB, interval time.Duration) *Server {
	t.Helper()
	srv, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), PingInterval: interval})
	require.NoError(t, err)
	s := &Server{Server: srv}
	t.Cleanup(s.Stop)
	return s
}

// StartAt runs a server on listen with JetStream in dir; tests that restart a
// server reuse the port and dir of the one before.
func StartAt(t testing.TB, listen, dir string) *Server {
	t.Helper()
	srv, err := embednats.Start(embednats.Config{Listen: listen, StoreDir: dir})
	require.NoError(t, err)
	s := &Server{Server: srv, StoreDir: dir}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down and waits; calling it twice is fine.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Listen returns the host:port the server listens on.
func (s *Server) Listen() string {
	return s.Addr().String()
}

// Connect dials the server; the connection is closed by t.Cleanup.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// JetStream dials the server and returns a JetStream context.
func (s *Server) JetStream(t testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := s.Connect(t, opts...)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// StartCluster runs an n-node cluster (every node routed to every other),
// JetStream on each in its own temporary directory, and waits (with a
// deadline, never a fixed sleep) until JetStream answers with a meta leader
// elected. Client ports are random; cluster ports are picked free just
// before the start, because JetStream clustering needs its routes
// configured up front.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr, ok := ln.Addr().(*net.TCPAddr)
		require.True(t, ok)
		ports[i] = addr.Port
		require.NoError(t, ln.Close())
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	var nodes []*Server
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "betasync-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		srv, err := server.NewServer(opts)
		require.NoError(t, err)
		srv.Start()
		s := &Server{Server: srv, StoreDir: opts.StoreDir}
		t.Cleanup(s.Stop)
		nodes = append(nodes, s)
	}
	for i, s := range nodes {
		require.True(t, s.ReadyForConnections(30*time.Second), "cluster node %d not ready", i+1)
	}
	nc := nodes[0].Connect(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, s := range nodes {
			if s.NumRoutes() < n-1 {
				return false
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the cluster did not form or elect a JetStream meta leader")
	return nodes
}
