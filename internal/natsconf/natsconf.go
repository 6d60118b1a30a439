// Package natsconf runs nats-server from scripts/nats-server.conf for tests,
// with a fresh password for each of its users (betasync, api, pod, admin).
// Its own tests check that each user can do its job and nothing more.
package natsconf

import (
	"crypto/rand"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
)

// PasswordVars maps each user of the file to the environment variable its
// password comes from.
var PasswordVars = map[string]string{
	"betasync": "BETASYNC_NATS_PASSWORD",
	"api":      "API_NATS_PASSWORD",
	"pod":      "POD_NATS_PASSWORD",
	"admin":    "ADMIN_NATS_PASSWORD",
}

// File returns the path of scripts/nats-server.conf.
func File() string {
	_, self, _, _ := runtime.Caller(0) // this file, internal/natsconf/natsconf.go
	return filepath.Join(filepath.Dir(self), "..", "..", "scripts", "nats-server.conf")
}

// Server is a running nats-server loaded from File.
type Server struct {
	*server.Server
	Passwords map[string]string // user -> password
}

// Start sets a fresh password for every user in the environment (so t may
// not be parallel), loads File, and runs it on a random port with JetStream
// in a temporary directory. t.Cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Passwords: map[string]string{}}
	for user, env := range PasswordVars {
		pw := "pw" + rand.Text()
		t.Setenv(env, pw)
		s.Passwords[user] = pw
	}
	opts, err := server.ProcessConfigFile(File())
	require.NoError(t, err)
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.True(t, srv.ReadyForConnections(10*time.Second), "nats-server did not start")
	s.Server = srv
	return s
}
