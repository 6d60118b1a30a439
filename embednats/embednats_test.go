package embednats_test

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/embednats"
)

func TestStartServesJetStream(t *testing.T) {
	srv, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	assert.True(t, srv.JetStreamEnabled())

	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	assert.Equal(t, int64(embednats.MaxPayload), nc.MaxPayload())
}

// A port in use fails at once with the listener's error, not after the
// readiness timeout.
func TestStartFailsFastOnPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	_, err = embednats.Start(embednats.Config{Listen: ln.Addr().String(), StoreDir: t.TempDir(), ReadyTimeout: time.Minute})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "address already in use")
}

func TestStartRejectsBadAddress(t *testing.T) {
	_, err := embednats.Start(embednats.Config{Listen: "no-port", StoreDir: t.TempDir()})
	require.Error(t, err)
}
