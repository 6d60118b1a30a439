package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoSecretInLogs reproduces the outside test: the ready line printed
// NATS_URL with its password. A daemon is given credentials in every
// variable that takes one, answers a reload and a wrong key, and stops; no
// secret appears anywhere in its output (debug level included).
func TestNoSecretInLogs(t *testing.T) {
	const (
		user     = "betasync"
		password = "nats-pass-5ecret"
		master   = "sk-master-5ecret"
	)
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Username: user, Password: password}
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(srv.Shutdown)
	require.True(t, srv.ReadyForConnections(10*time.Second))
	addr := srv.Addr().String()

	d := startDaemon(t, map[string]string{
		"NATS_URL":           fmt.Sprintf("nats://%s:%s@%s", user, password, addr),
		"NATS_USER":          user,
		"NATS_PASSWORD":      password,
		"LITELLM_MASTER_KEY": master,
		"BETASYNC_LOG_LEVEL": "debug",
	})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, d.url+"/reload/anthropic_beta_headers", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+master)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	// A wrong key, too: its text must not be logged either.
	req.Header.Set("Authorization", "Bearer sk-wrong-5ecret")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.NoError(t, d.shutdown(t))

	out := d.stdout.String() + d.stderr.String()
	require.Contains(t, out, `"ready"`, "the ready line was logged")
	for _, secret := range []string{password, master, "sk-wrong-5ecret"} {
		assert.NotContains(t, out, secret)
	}
	assert.Contains(t, out, "nats://"+user+":xxxxx@"+addr, "the NATS URL is logged, redacted")
}
