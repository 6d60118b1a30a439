// Package natstest starts real embedded nats-servers for tests: a random
// port, JetStream in a temporary directory, shut down by t.Cleanup.
package natstest

import (
	"fmt"
	"testing"

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

// String names the server in test logs.
func (s *Server) String() string {
	return fmt.Sprintf("nats-server %s (store %s)", s.ClientURL(), s.StoreDir)
}
