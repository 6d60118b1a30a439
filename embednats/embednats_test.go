package embednats_test

import (
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/embednats"
	"github.com/betasync/betasync/internal/syncbuf"
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

// logLines decodes the JSON log lines the server wrote.
func logLines(t *testing.T, buf *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		lines = append(lines, m)
	}
	return lines
}

// The server's chatter (banner, settings, "Server is ready") reaches the
// daemon's log at DEBUG, tagged component=nats-server, so at the default
// level (INFO) the log holds only the daemon's own lines and the server's
// warnings and errors.
func TestServerNoticesAreDebug(t *testing.T) {
	var buf syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Logger: logger})
	require.NoError(t, err)
	srv.Shutdown()
	srv.WaitForShutdown()

	var ready bool
	for _, l := range logLines(t, &buf) {
		assert.Equal(t, "nats-server", l["component"], l)
		assert.NotEqual(t, "INFO", l["level"], "a notice at INFO: %v", l)
		ready = ready || l["msg"] == "Server is ready"
	}
	assert.True(t, ready, "the server's notices are logged, at DEBUG: %s", buf.String())
}

// Its errors are kept, at ERROR: a port in use is logged, and returned.
func TestServerErrorsAreKept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var buf syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	_, err = embednats.Start(embednats.Config{Listen: ln.Addr().String(), StoreDir: t.TempDir(), Logger: logger})
	require.Error(t, err)

	var errorLine bool
	for _, l := range logLines(t, &buf) {
		assert.Equal(t, "nats-server", l["component"], l)
		msg, _ := l["msg"].(string)
		errorLine = errorLine || (l["level"] == "ERROR" && strings.Contains(msg, "address already in use"))
	}
	assert.True(t, errorLine, "the listen error at ERROR: %s", buf.String())
}
