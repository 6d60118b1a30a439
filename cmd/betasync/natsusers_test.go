package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/natsconf"
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/subscriber"
)

// replica is a daemon started through run against an external NATS.
type replica struct {
	url            string
	stdout, stderr *syncbuf.Buffer
	stop           func() error
}

// listening is the log line naming a replica's HTTP address, API or not.
var listening = regexp.MustCompile(`listening[^\n]*?"url":"(http://[^"]+)"`)

// startReplica runs the daemon with env and waits until it logs its HTTP
// address.
func startReplica(t *testing.T, env map[string]string) *replica {
	t.Helper()
	r := &replica{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"betasync"}, func(k string) string { return env[k] }, strings.NewReader(""), r.stdout, r.stderr)
	}()
	var result error
	stopped := false
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case result = <-done:
			case <-time.After(20 * time.Second):
				t.Error("daemon did not stop")
			}
		}
		return result
	}
	t.Cleanup(func() { assert.NoError(t, r.stop()) })
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(r.stderr.String())
		if m == nil {
			return false
		}
		r.url = m[1]
		return true
	}, 10*time.Second, 10*time.Millisecond, "daemon did not start; stderr:\n%s", r.stderr)
	return r
}

// call sends an admin request; it fails no test itself, so that it may run
// inside require.Eventually's condition.
func (r *replica) call(ctx context.Context, method, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// requireOK sends an admin request that must succeed.
func (r *replica) requireOK(t *testing.T, method, path string, out any) {
	t.Helper()
	code, err := r.call(t.Context(), method, path, out)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "%s %s; stderr:\n%s", method, path, r.stderr)
}

// TestLeastPrivilegeUsers runs the real daemon on a nats-server started
// from scripts/nats-server.conf: a worker-only replica as user betasync, an
// API-only replica as user api, and a pod as user pod. Everything works, and
// neither replica is refused anything.
func TestLeastPrivilegeUsers(t *testing.T) {
	s := natsconf.Start(t)
	env := func(user string, extra map[string]string) map[string]string {
		e := map[string]string{
			"NATS_URL":                             s.ClientURL(),
			"NATS_USER":                            user,
			"NATS_PASSWORD":                        s.Passwords[user],
			"BETASYNC_HTTP_ADDR":                   "127.0.0.1:0",
			"LITELLM_MASTER_KEY":                   "sk-test",
			"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
			"BETASYNC_LOG_FORMAT":                  "json",
		}
		maps.Copy(e, extra)
		return e
	}
	worker := startReplica(t, env("betasync", map[string]string{"BETASYNC_ROLES": "worker", "BETASYNC_REPLICA_ID": "worker-1"}))
	api := startReplica(t, env("api", map[string]string{"BETASYNC_ROLES": "api", "BETASYNC_REPLICA_ID": "api-1"}))

	api.requireOK(t, http.MethodGet, "/readyz", nil)
	var reload struct {
		Version uint64 `json:"version"`
	}
	api.requireOK(t, http.MethodPost, "/reload/anthropic_beta_headers", &reload)
	require.NotZero(t, reload.Version)
	api.requireOK(t, http.MethodPost, "/schedule/anthropic_beta_headers_reload?hours=24", nil)
	var status struct {
		Scheduled  bool   `json:"scheduled"`
		LockHolder string `json:"lock_holder"`
	}
	require.Eventually(t, func() bool {
		code, err := api.call(t.Context(), http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &status)
		return err == nil && code == http.StatusOK && status.Scheduled && status.LockHolder == "worker-1"
	}, 5*time.Second, 20*time.Millisecond, "the worker takes the lease and keeps the schedule")
	var mapping struct {
		Version uint64 `json:"version"`
	}
	require.Eventually(t, func() bool {
		code, err := api.call(t.Context(), http.MethodGet, "/anthropic_beta_headers", &mapping)
		return err == nil && code == http.StatusOK && mapping.Version >= reload.Version
	}, 5*time.Second, 10*time.Millisecond, "the API replica's subscriber follows the versions")

	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("pod", s.Passwords["pod"]))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	pod, err := subscriber.New(nc)
	require.NoError(t, err)
	t.Cleanup(pod.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, pod.WaitReady(ctx))
	assert.GreaterOrEqual(t, pod.Current().Version, reload.Version)
	require.NoError(t, nc.Flush())
	require.NoError(t, nc.LastError())

	require.NoError(t, api.stop())
	require.NoError(t, worker.stop())
	// Some refusals change no outcome above (a refused config.updated, say:
	// the API replica still reads the version from KV), so read the logs,
	// where the daemon reports every asynchronous NATS error.
	for name, r := range map[string]*replica{"worker": worker, "api": api} {
		var refused []string
		for line := range strings.Lines(r.stderr.String()) {
			if strings.Contains(strings.ToLower(line), "permissions violation") {
				refused = append(refused, line)
			}
		}
		assert.Empty(t, refused, "the %s replica was refused", name)
	}
}
