package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/subscriber"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// testDaemon is a running betasync started through run, as main starts it.
type testDaemon struct {
	url    string // admin API base URL
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	stop   context.CancelFunc
	done   chan error
}

var apiLine = regexp.MustCompile(`admin API listening[^\n]*?"url":"(http://[^"]+)"`)

// startDaemon runs the daemon on random ports with env on top of test
// defaults, and waits for its API.
func startDaemon(t *testing.T, env map[string]string) *testDaemon {
	t.Helper()
	full := map[string]string{
		"BETASYNC_NATS_LISTEN":                 "127.0.0.1:-1",
		"BETASYNC_HTTP_ADDR":                   "127.0.0.1:0",
		"BETASYNC_DATA_DIR":                    t.TempDir(),
		"LITELLM_MASTER_KEY":                   "sk-test",
		"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
		"BETASYNC_LOG_FORMAT":                  "json",
	}
	maps.Copy(full, env)
	ctx, cancel := context.WithCancel(context.Background())
	d := &testDaemon{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, stop: cancel, done: make(chan error, 1)}
	go func() {
		d.done <- run(ctx, []string{"betasync"}, envFunc(full), strings.NewReader(""), d.stdout, d.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-d.done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("testDaemon did not stop")
		}
	})
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(d.stderr.String())
		if m == nil {
			return false
		}
		d.url = m[1]
		return true
	}, 10*time.Second, 10*time.Millisecond, "testDaemon did not start; stderr:\n%s", d.stderr)
	return d
}

// shutdown stops the testDaemon and returns run's result.
func (d *testDaemon) shutdown(t *testing.T) error {
	t.Helper()
	d.stop()
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("testDaemon did not stop")
		return nil
	}
}

func (d *testDaemon) call(t *testing.T, method, path string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, d.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(body, out), "body: %s", body)
	}
	return resp.StatusCode
}

func TestDaemonEmbeddedNATS(t *testing.T) {
	d := startDaemon(t, nil)

	var reload betasync.ReloadResult
	require.Equal(t, http.StatusOK, d.call(t, http.MethodPost, "/reload/anthropic_beta_headers", &reload))
	assert.Equal(t, betasync.StatusSuccess, reload.Status)
	assert.Equal(t, betasync.SourceEmbedded, reload.Source)
	assert.Equal(t, betasync.Default().Hash(), reload.Hash)
	assert.Equal(t, 7, reload.ProvidersCount)

	var set betasync.ScheduleResult
	require.Equal(t, http.StatusOK, d.call(t, http.MethodPost, "/schedule/anthropic_beta_headers_reload?hours=24", &set))
	var st betasync.ScheduleStatus
	require.Equal(t, http.StatusOK, d.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st))
	assert.True(t, st.Scheduled)
	// The lease is taken right after start-up, not necessarily before the
	// first request.
	require.Eventually(t, func() bool {
		d.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st)
		return st.LockHolder != ""
	}, 5*time.Second, 20*time.Millisecond)

	var mapping struct {
		Version uint64 `json:"version"`
		Hash    string `json:"hash"`
	}
	require.Eventually(t, func() bool {
		d.call(t, http.MethodGet, "/anthropic_beta_headers", &mapping)
		return mapping.Version == reload.Version
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, reload.Hash, mapping.Hash)

	require.NoError(t, d.shutdown(t))
	assert.Contains(t, d.stderr.String(), "released the lease")
}

func TestDaemonSurvivesRestartWithSchedule(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, map[string]string{"BETASYNC_DATA_DIR": dir})
	require.Equal(t, http.StatusOK, d.call(t, http.MethodPost, "/schedule/anthropic_beta_headers_reload?hours=6", nil))
	require.NoError(t, d.shutdown(t))

	d2 := startDaemon(t, map[string]string{"BETASYNC_DATA_DIR": dir})
	var st betasync.ScheduleStatus
	require.Equal(t, http.StatusOK, d2.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st))
	assert.True(t, st.Scheduled)
	require.NotNil(t, st.IntervalHours)
	assert.InDelta(t, 6.0, *st.IntervalHours, 1e-9)
}

// Two replicas on one NATS: when the lease holder shuts down it releases
// the lease, and the other takes over well before the TTL would expire.
func TestDaemonReplicasHandOverLease(t *testing.T) {
	srv := natstest.Start(t)
	common := map[string]string{"NATS_URL": srv.ClientURL(), "BETASYNC_LOCK_TTL": "6s"}
	withID := func(id string) map[string]string {
		env := map[string]string{"BETASYNC_REPLICA_ID": id}
		maps.Copy(env, common)
		return env
	}
	a := startDaemon(t, withID("replica-a"))
	var st betasync.ScheduleStatus
	require.Eventually(t, func() bool {
		a.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st)
		return st.LockHolder == "replica-a"
	}, 5*time.Second, 20*time.Millisecond)

	b := startDaemon(t, withID("replica-b"))
	require.NoError(t, a.shutdown(t))
	// Renewal ticks every TTL/3 = 2s; without the release B would wait for
	// the 6s TTL.
	require.Eventually(t, func() bool {
		b.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st)
		return st.LockHolder == "replica-b"
	}, 4*time.Second, 20*time.Millisecond, "replica-b did not take over after replica-a released the lease")
}

func TestDaemonAPIOnlyWithoutWorkerAnswers503(t *testing.T) {
	srv := natstest.Start(t)
	d := startDaemon(t, map[string]string{"NATS_URL": srv.ClientURL(), "BETASYNC_ROLES": "api"})
	var body map[string]any
	assert.Equal(t, http.StatusServiceUnavailable, d.call(t, http.MethodPost, "/reload/anthropic_beta_headers", &body))
	assert.Equal(t, http.StatusServiceUnavailable, d.call(t, http.MethodGet, "/readyz", &body))
}

func TestDaemonGeneratesMasterKey(t *testing.T) {
	d := startDaemon(t, map[string]string{"LITELLM_MASTER_KEY": ""})
	m := regexp.MustCompile(`master key is (sk-\S+)`).FindStringSubmatch(d.stdout.String())
	require.NotNil(t, m, "stdout: %s", d.stdout)
	key := m[1]
	assert.Equal(t, "betasync: LITELLM_MASTER_KEY is not set; this run's master key is "+key+"\n", d.stdout.String(),
		"the generated key is the only line on stdout; everything else is a log line on stderr")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, d.url+"/schedule/anthropic_beta_headers_reload/status", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the testDaemon must not run open")

	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, d.stderr.String(), key, "the key must not reach the logs")
}

func TestDaemonRejectsInvalidSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad duration", map[string]string{"BETASYNC_FETCH_TIMEOUT": "ten"}, "BETASYNC_FETCH_TIMEOUT"},
		{"negative duration", map[string]string{"BETASYNC_CHECK_INTERVAL": "-1s"}, "BETASYNC_CHECK_INTERVAL"},
		{"short lock ttl", map[string]string{"BETASYNC_LOCK_TTL": "100ms"}, "BETASYNC_LOCK_TTL"},
		{"bad roles", map[string]string{"BETASYNC_ROLES": "api,cook"}, "BETASYNC_ROLES"},
		{"bad local flag", map[string]string{"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "maybe"}, "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"},
		{"bad replicas", map[string]string{"BETASYNC_KV_REPLICAS": "0"}, "BETASYNC_KV_REPLICAS"},
		{"history too short", map[string]string{"BETASYNC_HISTORY": "1"}, "BETASYNC_HISTORY"},
		{"history too long", map[string]string{"BETASYNC_HISTORY": "65"}, "BETASYNC_HISTORY"},
		{"history not a number", map[string]string{"BETASYNC_HISTORY": "lots"}, "BETASYNC_HISTORY"},
		{"bad log level", map[string]string{"BETASYNC_LOG_LEVEL": "loud"}, "BETASYNC_LOG_LEVEL"},
		{"unwritable data dir", map[string]string{"BETASYNC_DATA_DIR": filepath.Join(file, "sub")}, "BETASYNC_DATA_DIR"},
		{"unreachable NATS", map[string]string{"NATS_URL": "nats://127.0.0.1:1", "BETASYNC_NATS_CONNECT_TIMEOUT": "300ms"}, "NATS_URL"},
		{"bad URL", map[string]string{"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "False", "LITELLM_ANTHROPIC_BETA_HEADERS_URL": "ftp://example.invalid/x"}, "LITELLM_ANTHROPIC_BETA_HEADERS_URL"},
		{"bad keys file", map[string]string{"BETASYNC_KEYS_FILE": file}, "BETASYNC_KEYS_FILE"},
		{"bad fleet window", map[string]string{"BETASYNC_FLEET_WINDOW": "0s"}, "BETASYNC_FLEET_WINDOW"},
		{"long fleet window", map[string]string{"BETASYNC_FLEET_WINDOW": "1m"}, "BETASYNC_FLEET_WINDOW"},
		{"bad signing seed", map[string]string{"BETASYNC_SIGNING_SEED": "SUnope"}, "BETASYNC_SIGNING_SEED"},
		{"seed and seed file", map[string]string{"BETASYNC_SIGNING_SEED": "x", "BETASYNC_SIGNING_SEED_FILE": file}, "BETASYNC_SIGNING_SEED_FILE"},
		{"bad trusted key", map[string]string{"BETASYNC_TRUSTED_KEYS": "Unope"}, "BETASYNC_TRUSTED_KEYS"},
		{"bad trusted proxy", map[string]string{"BETASYNC_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, "BETASYNC_TRUSTED_PROXIES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"BETASYNC_NATS_LISTEN": "127.0.0.1:-1",
				"BETASYNC_HTTP_ADDR":   "127.0.0.1:0",
				"BETASYNC_DATA_DIR":    t.TempDir(),
				"LITELLM_MASTER_KEY":   "sk-test",
				"BETASYNC_LOG_FORMAT":  "json",
			}
			maps.Copy(env, tt.env)
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"betasync"}, envFunc(env), strings.NewReader(""), &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, 1, exitCode(err))
		})
	}
}

func TestFilterCommand(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "m.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"bedrock": {"a": "a-renamed", "b": null}, "provider_aliases": {"br": "bedrock"}}`), 0o600))
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"argument, embedded mapping", []string{"-provider", "bedrock", "context-1m-2025-08-07, advanced-tool-use-2025-11-20,nope"}, "", "context-1m-2025-08-07,tool-search-tool-2025-10-19\n"},
		{"nothing survives prints an empty line", []string{"-provider", "bedrock", "files-api-2025-04-14"}, "", "\n"},
		{"unknown provider", []string{"-provider", "nowhere", "context-1m-2025-08-07"}, "", "\n"},
		{"stdin, one result per line", []string{"-provider", "vertex_ai"}, "context-1m-2025-08-07\n\neffort-2025-11-24,web-search-2025-03-05\n", "context-1m-2025-08-07\n\nweb-search-2025-03-05\n"},
		{"config file and alias", []string{"-provider", "br", "-config", cfg, "b,a,a"}, "", "a-renamed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{"betasync", "filter"}, tt.args...), envFunc(nil), strings.NewReader(tt.stdin), &stdout, &stderr)
			require.NoError(t, err, stderr.String())
			assert.Equal(t, tt.want, stdout.String())
		})
	}
	t.Run("unknown provider is named on stderr", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(t.Context(), []string{"betasync", "filter", "-provider", "bedrok", "context-1m-2025-08-07"}, envFunc(nil), nil, &stdout, &stderr))
		assert.Equal(t, "\n", stdout.String())
		assert.Contains(t, stderr.String(), `provider "bedrok" has no section`)
	})
	t.Run("missing provider is a usage error", func(t *testing.T) {
		err := run(t.Context(), []string{"betasync", "filter", "x"}, envFunc(nil), strings.NewReader(""), io.Discard, io.Discard)
		require.Error(t, err)
		assert.Equal(t, 2, exitCode(err))
	})
	t.Run("invalid config file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(`{"bedrock": []}`), 0o600))
		err := run(t.Context(), []string{"betasync", "filter", "-provider", "bedrock", "-config", bad, "x"}, envFunc(nil), strings.NewReader(""), io.Discard, io.Discard)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"bedrock"`)
	})
}

func TestValidateCommand(t *testing.T) {
	var stdout bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"betasync", "validate", "../../testdata/litellm_upstream.json"}, envFunc(nil), nil, &stdout, io.Discard))
	m, err := betasync.Parse(mustRead(t, "../../testdata/litellm_upstream.json"))
	require.NoError(t, err)
	assert.Contains(t, stdout.String(), "valid: 7 providers")
	assert.Contains(t, stdout.String(), m.Hash())
	assert.Equal(t, 1, strings.Count(stdout.String(), "\n"), "one-line summary")

	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"anthropic": {"x": 1}}`), 0o600))
	err = run(t.Context(), []string{"betasync", "validate", bad}, envFunc(nil), nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), `beta "x"`)

	err = run(t.Context(), []string{"betasync", "validate"}, envFunc(nil), nil, io.Discard, io.Discard)
	assert.Equal(t, 2, exitCode(err))

	odd := filepath.Join(t.TempDir(), "odd.json")
	require.NoError(t, os.WriteFile(odd, []byte(`{"anthropic": {"a": "a", " b": "b"}, "provider_aliases": {"x": "nowhere"}}`), 0o600))
	stdout.Reset()
	require.NoError(t, run(t.Context(), []string{"betasync", "validate", odd}, envFunc(nil), nil, &stdout, io.Discard))
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 3, stdout.String())
	assert.Contains(t, lines[0], "2 warnings")
	assert.Contains(t, stdout.String(), `" b"`)
	assert.Contains(t, stdout.String(), `"nowhere"`)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// The compose file may only set variables the testDaemon (or the example pod)
// reads, so it cannot drift into settings that silently do nothing.
func TestComposeUsesKnownVariables(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if os.IsNotExist(err) {
		t.Skip("no docker-compose.yml")
	}
	require.NoError(t, err)
	known := []string{"POD_HTTP_ADDR", "POD_ID"} // the example pod's own
	for _, e := range envVars {
		known = append(known, e.name)
	}
	set := regexp.MustCompile(`(?m)^\s*-?\s*([A-Z][A-Z0-9_]*)\s*[:=]`)
	var names []string
	for _, m := range set.FindAllStringSubmatch(string(data), -1) {
		names = append(names, m[1])
	}
	require.NotEmpty(t, names, "found no environment variables in the compose file")
	for _, n := range names {
		assert.Contains(t, known, n, "docker-compose.yml sets %s, which betasync does not read", n)
	}
	assert.True(t, slices.Contains(names, "NATS_URL"), "compose should point betasync at its NATS cluster")
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var stdout bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"betasync", "version"}, envFunc(nil), nil, &stdout, io.Discard))
	assert.Regexp(t, fmt.Sprintf(`^betasync %s \(commit \S+, built \S+, go\S+\)\n$`, regexp.QuoteMeta(version)), stdout.String())
	err := run(t.Context(), []string{"betasync", "frobnicate"}, envFunc(nil), nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
}

// A worker-only replica serves no admin API and needs no key, but exposes
// health and metrics, so its reloads and lease flag can be scraped.
func TestDaemonWorkerOnlyServesMetrics(t *testing.T) {
	stdout := &syncbuf.Buffer{}
	env := map[string]string{
		"BETASYNC_ROLES":                       "worker",
		"BETASYNC_NATS_LISTEN":                 "127.0.0.1:-1",
		"BETASYNC_HTTP_ADDR":                   "127.0.0.1:0",
		"BETASYNC_DATA_DIR":                    t.TempDir(),
		"BETASYNC_LOG_FORMAT":                  "json",
		"BETASYNC_LOCK_TTL":                    "3s",
		"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	stderr := &syncbuf.Buffer{}
	go func() { done <- run(ctx, []string{"betasync"}, envFunc(env), nil, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	var base string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`health and metrics listening[^\n]*?"url":"(http://[^"]+)"`).FindStringSubmatch(stderr.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond)
	assert.NotContains(t, stdout.String(), "master key", "a worker-only replica has no API keys")

	get := func(path string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	require.Eventually(t, func() bool {
		code, body := get("/metrics")
		return code == http.StatusOK && strings.Contains(body, "betasync_lease_holder 1")
	}, 5*time.Second, 20*time.Millisecond)
	code, _ := get("/schedule/anthropic_beta_headers_reload/status")
	assert.Equal(t, http.StatusNotFound, code)
}

// The built binary stops cleanly on SIGTERM: exit 0, lease released.
func TestBinaryStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "betasync")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	cmd := exec.CommandContext(t.Context(), bin)
	cmd.Env = append(os.Environ(),
		"BETASYNC_NATS_LISTEN=127.0.0.1:-1",
		"BETASYNC_HTTP_ADDR=127.0.0.1:0",
		"BETASYNC_DATA_DIR="+t.TempDir(),
		"LITELLM_MASTER_KEY=sk-test",
		"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS=True",
		"BETASYNC_LOG_FORMAT=json",
	)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool {
		return apiLine.MatchString(stderr.String()) && strings.Contains(stderr.String(), "acquired the lease")
	}, 10*time.Second, 10*time.Millisecond, "stderr: %s", stderr)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "exit status; stderr: %s", stderr)
	assert.Contains(t, stderr.String(), "released the lease")
	assert.Contains(t, stderr.String(), "embedded NATS stopped")
}

// A small fleet: a 3-node NATS cluster, buckets with 3 replicas, two
// daemons on different nodes and a pod's subscriber on the third. A reload
// through one replica reaches the other replica's status and mapping and the
// pod; the schedule set through one is the other's.
func TestFleetOnACluster(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	fleet := func(id string, node *natstest.Server) map[string]string {
		return map[string]string{
			"NATS_URL":             node.ClientURL(),
			"BETASYNC_KV_REPLICAS": "3",
			"BETASYNC_REPLICA_ID":  id,
		}
	}
	a := startDaemon(t, fleet("replica-a", nodes[0]))
	b := startDaemon(t, fleet("replica-b", nodes[1]))

	pod, err := subscriber.New(nodes[2].Connect(t))
	require.NoError(t, err)
	t.Cleanup(pod.Close)

	var reload betasync.ReloadResult
	require.Equal(t, http.StatusOK, a.call(t, http.MethodPost, "/reload/anthropic_beta_headers", &reload))
	var set betasync.ScheduleResult
	require.Equal(t, http.StatusOK, a.call(t, http.MethodPost, "/schedule/anthropic_beta_headers_reload?hours=12", &set))

	var st betasync.ScheduleStatus
	require.Equal(t, http.StatusOK, b.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st))
	assert.True(t, st.Scheduled, "the schedule is shared")
	assert.Equal(t, reload.Version, st.ConfigVersion)
	require.Eventually(t, func() bool {
		b.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st)
		return st.LockHolder == "replica-a" || st.LockHolder == "replica-b"
	}, 5*time.Second, 20*time.Millisecond, "one replica holds the lease")

	var mapping struct {
		Version uint64 `json:"version"`
	}
	require.Eventually(t, func() bool {
		b.call(t, http.MethodGet, "/anthropic_beta_headers", &mapping)
		return mapping.Version == reload.Version && pod.Current().Version == reload.Version
	}, 10*time.Second, 20*time.Millisecond, "the other replica and the pod serve the version")
	assert.Equal(t, reload.Hash, pod.Current().Hash())
}

// TestReadyzNeedsKV reproduces the outside test: after a full cluster
// restart /readyz said 200 at once while reloads failed for seconds. Ready
// now means the KV buckets answer too: with one gone, NATS connected and a
// worker answering are not enough.
func TestReadyzNeedsKV(t *testing.T) {
	srv := natstest.Start(t)
	d := startDaemon(t, map[string]string{"NATS_URL": srv.ClientURL()})
	var body map[string]any
	require.Eventually(t, func() bool { return d.call(t, http.MethodGet, "/readyz", &body) == http.StatusOK }, 10*time.Second, 20*time.Millisecond)

	_, js := srv.JetStream(t)
	require.NoError(t, js.DeleteKeyValue(t.Context(), kv.BucketState))
	assert.Equal(t, http.StatusServiceUnavailable, d.call(t, http.MethodGet, "/readyz", &body))
	assert.Contains(t, fmt.Sprint(body), "KV bucket betasync_state is not available")
}

// TestShutdownIsBounded reproduces the outside test: shutdown could take
// the HTTP timeout plus about 25 s of commands in flight, past Kubernetes'
// 30 s grace. With a reload hanging on its upstream (fetch timeout 60 s),
// the whole shutdown stays within BETASYNC_SHUTDOWN_TIMEOUT.
func TestShutdownIsBounded(t *testing.T) {
	hang := make(chan struct{})
	reached := make(chan struct{}, 1)
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 { // the start-up reload
			_, _ = w.Write(betasync.Default().JSON())
			return
		}
		select {
		case reached <- struct{}{}:
		default:
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(hang) })
	d := startDaemon(t, map[string]string{
		"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "False",
		"LITELLM_ANTHROPIC_BETA_HEADERS_URL":   up.URL,
		"BETASYNC_FETCH_TIMEOUT":               "60s",
		"BETASYNC_SHUTDOWN_TIMEOUT":            "1s",
	})
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, d.url+"/reload/anthropic_beta_headers", nil)
		req.Header.Set("Authorization", "Bearer sk-test")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	select { // the manual reload waits on the upstream
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload did not reach the upstream")
	}

	start := time.Now()
	require.NoError(t, d.shutdown(t))
	assert.Less(t, time.Since(start), 15*time.Second, "a hung command does not hold the shutdown for its 60 s")
}

// TestSignedDaemon: `betasync keygen` makes a key; a daemon given its seed
// signs what it stores and its own subscriber (which trusts its key)
// serves it; a pod trusting the key applies it.
func TestSignedDaemon(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"betasync", "keygen"}, envFunc(nil), strings.NewReader(""), &out, io.Discard))
	vars := map[string]string{}
	for line := range strings.Lines(out.String()) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		require.True(t, ok, "keygen prints NAME=value lines: %q", line)
		vars[k] = v
	}
	require.Contains(t, vars, "BETASYNC_SIGNING_SEED")
	require.Contains(t, vars, "BETASYNC_TRUSTED_KEYS")

	srv := natstest.Start(t)
	d := startDaemon(t, map[string]string{"NATS_URL": srv.ClientURL(), "BETASYNC_SIGNING_SEED": vars["BETASYNC_SIGNING_SEED"]})
	var mapping struct {
		Version uint64 `json:"version"`
	}
	require.Eventually(t, func() bool {
		return d.call(t, http.MethodGet, "/anthropic_beta_headers", &mapping) == http.StatusOK && mapping.Version > 0
	}, 10*time.Second, 20*time.Millisecond, "the daemon's own subscriber serves its signed version")

	v, err := betasync.NewVerifier(vars["BETASYNC_TRUSTED_KEYS"])
	require.NoError(t, err)
	pod, err := subscriber.New(srv.Connect(t), subscriber.WithVerifier(v), subscriber.WithoutFleet())
	require.NoError(t, err)
	t.Cleanup(pod.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, pod.WaitReady(ctx))
	assert.Equal(t, mapping.Version, pod.Current().Version)
	assert.Equal(t, vars["BETASYNC_TRUSTED_KEYS"], pod.Current().Signer)
}

// TestReadmeEnvTable keeps the README's environment table and envVars (the
// daemon's list, which --help prints) the same list, in the same order.
func TestReadmeEnvTable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\| ([^|]*) \\| (.*) \\|$")
	_, table, ok := strings.Cut(string(data), "## Environment")
	require.True(t, ok)
	table, _, _ = strings.Cut(table, "\n## ")
	// Each row as --help prints it: name, default, meaning (backticks are
	// the README's markup only).
	unquote := strings.NewReplacer("`", "")
	var rows []string
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		rows = append(rows, m[1]+" | "+unquote.Replace(m[2])+" | "+unquote.Replace(m[3]))
	}
	var want []string
	for _, e := range envVars {
		def := e.def
		if def == "" {
			def = "(empty)"
		}
		want = append(want, e.name+" | "+def+" | "+e.doc)
	}
	assert.Equal(t, want, rows)
}

func TestCLIHelpAndFlags(t *testing.T) {
	runOut := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		var stdout bytes.Buffer
		err := run(t.Context(), append([]string{"betasync"}, args...), envFunc(nil), strings.NewReader(""), &stdout, io.Discard)
		return stdout.String(), err
	}
	t.Run("--version", func(t *testing.T) {
		out, err := runOut(t, "--version")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(out, "betasync "+version+" (commit "), out)
	})
	t.Run("--help lists every variable with its default", func(t *testing.T) {
		out, err := runOut(t, "--help")
		require.NoError(t, err)
		for _, e := range envVars {
			def := e.def
			if def == "" {
				def = "(empty)"
			}
			assert.Contains(t, out, "  "+e.name+" (default "+def+")")
		}
	})
	for _, cmd := range []string{"filter", "validate", "keygen", "version"} {
		t.Run(cmd+" --help", func(t *testing.T) {
			out, err := runOut(t, cmd, "--help")
			require.NoError(t, err)
			assert.Contains(t, out, "usage: betasync "+cmd)
		})
	}
	t.Run("--help after a positional argument", func(t *testing.T) {
		out, err := runOut(t, "validate", "../../default_mapping.json", "--help")
		require.NoError(t, err)
		assert.Contains(t, out, "usage: betasync validate")
	})
	t.Run("an unknown flag after the file is refused by name", func(t *testing.T) {
		for _, args := range [][]string{
			{"validate", "../../default_mapping.json", "-x"},
			{"filter", "context-1m-2025-08-07", "-provider", "bedrock", "-x"},
		} {
			_, err := runOut(t, args...)
			require.Error(t, err, args)
			assert.Equal(t, 2, exitCode(err), args)
			assert.Contains(t, err.Error(), "flag provided but not defined: -x", args)
		}
	})
	t.Run("flags after the header", func(t *testing.T) {
		out, err := runOut(t, "filter", "context-1m-2025-08-07,advanced-tool-use-2025-11-20", "-provider", "bedrock")
		require.NoError(t, err)
		assert.Equal(t, "context-1m-2025-08-07,tool-search-tool-2025-10-19\n", out)
	})
	t.Run("after --, a header that looks like a flag", func(t *testing.T) {
		out, err := runOut(t, "filter", "-provider", "bedrock", "--", "-x")
		require.NoError(t, err)
		assert.Equal(t, "\n", out)
	})
	t.Run("version takes no arguments", func(t *testing.T) {
		_, err := runOut(t, "version", "extra")
		require.Error(t, err)
		assert.Equal(t, 2, exitCode(err))
	})
}

// A keys file exported from LiteLLM names LiteLLM's roles: the daemon
// starts, proxy_admin is admin, and internal_user gets 403 on LiteLLM's
// endpoints, the status included.
func TestDaemonAcceptsLiteLLMRoles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	require.NoError(t, os.WriteFile(file, []byte(`[
  {"name": "ops", "sha256": "`+sum("sk-ops")+`", "role": "proxy_admin"},
  {"name": "alice", "sha256": "`+sum("sk-alice")+`", "role": "internal_user"}
]`), 0o600))
	d := startDaemon(t, map[string]string{"BETASYNC_KEYS_FILE": file, "LITELLM_MASTER_KEY": ""})
	status := func(key string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, d.url+"/schedule/anthropic_beta_headers_reload/status", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Eventually(t, func() bool { return status("sk-ops") == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, http.StatusForbidden, status("sk-alice"))
	assert.NotContains(t, d.stdout.String(), "master key", "a keys file with an admin key: no generated key")
}

// An API-only replica whose workers are gone answers the status from KV,
// and says that no worker answered.
func TestDaemonAPIOnlyStatusWithoutWorker(t *testing.T) {
	srv := natstest.Start(t)
	// A short lease TTL: should the release at shutdown not get through in
	// time (a loaded machine), the lease still ends within seconds.
	w := startDaemon(t, map[string]string{"NATS_URL": srv.ClientURL(), "BETASYNC_REPLICA_ID": "worker-1", "BETASYNC_LOCK_TTL": "3s"})
	require.Equal(t, http.StatusOK, w.call(t, http.MethodPost, "/schedule/anthropic_beta_headers_reload?hours=6", nil))
	require.NoError(t, w.shutdown(t))

	api := startDaemon(t, map[string]string{"NATS_URL": srv.ClientURL(), "BETASYNC_ROLES": "api", "BETASYNC_REPLICA_ID": "api-1"})
	var st betasync.ScheduleStatus
	require.Eventually(t, func() bool {
		st = betasync.ScheduleStatus{}
		return api.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", &st) == http.StatusOK && st.LockHolder == ""
	}, 15*time.Second, 50*time.Millisecond, "the worker's lease is released (or, at worst, expires)")
	assert.True(t, st.Scheduled)
	if assert.NotNil(t, st.IntervalHours) {
		assert.InDelta(t, 6.0, *st.IntervalHours, 0)
	}
	assert.Contains(t, st.Warning, "no betasync worker answered")
	assert.Equal(t, http.StatusServiceUnavailable, api.call(t, http.MethodPost, "/reload/anthropic_beta_headers", nil))
}

// TestReadYourWrites reproduces the outside test: after POST /reload
// answered version 3, a GET on the same replica right after sometimes still
// showed version 2. An API-only replica (its worker elsewhere) now serves
// at least the version it just reported.
func TestReadYourWrites(t *testing.T) {
	srv := natstest.Start(t)
	var n atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, `{"anthropic": {"beta-%d": "beta-%d"}}`, n.Load(), n.Load())
	}))
	t.Cleanup(up.Close)
	startDaemon(t, map[string]string{
		"NATS_URL": srv.ClientURL(), "BETASYNC_ROLES": "worker", "BETASYNC_HTTP_ADDR": "127.0.0.1:0",
		"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "False", "LITELLM_ANTHROPIC_BETA_HEADERS_URL": up.URL,
	})
	api := startDaemon(t, map[string]string{"NATS_URL": srv.ClientURL(), "BETASYNC_ROLES": "api"})
	var reload struct {
		Version uint64 `json:"version"`
		Changed bool   `json:"changed"`
	}
	var mapping struct {
		Version uint64 `json:"version"`
	}
	changed := 0
	for i := range 20 {
		n.Store(int32(i + 1))
		require.Equal(t, http.StatusOK, api.call(t, http.MethodPost, "/reload/anthropic_beta_headers", &reload))
		changed += map[bool]int{true: 1}[reload.Changed]
		require.Equal(t, http.StatusOK, api.call(t, http.MethodGet, "/anthropic_beta_headers", &mapping))
		require.GreaterOrEqual(t, mapping.Version, reload.Version, "round %d: the replica serves what it just reported", i)
	}
	assert.GreaterOrEqual(t, changed, 19, "(nearly) every round stored a new version")
}

// TestMasterKeyIsTrimmed: a master key from a Secret file ends in a
// newline; clients' keys are trimmed, so the configured one must be too.
func TestMasterKeyIsTrimmed(t *testing.T) {
	d := startDaemon(t, map[string]string{"LITELLM_MASTER_KEY": "sk-test\n"})
	assert.Equal(t, http.StatusOK, d.call(t, http.MethodGet, "/schedule/anthropic_beta_headers_reload/status", nil))
}
