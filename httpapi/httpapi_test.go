package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/metrics"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

// waitFor bounds every wait for something the bus must deliver. It is a
// deadline for a hung test, not a measurement.
const waitFor = 10 * time.Second

// tick is how often an Eventually condition is re-checked.
const tick = 10 * time.Millisecond

// The API keys of every test server.
const (
	masterKey = "sk-master-0123456789"
	adminKey  = "sk-admin-0123456789"
	viewerKey = "sk-viewer-0123456789"
	replicaID = "replica-test-1"
)

// Paths of the endpoints.
const (
	pathReload   = "/reload/anthropic_beta_headers"
	pathSchedule = "/schedule/anthropic_beta_headers_reload"
	pathStatus   = "/schedule/anthropic_beta_headers_reload/status"
	pathMapping  = "/anthropic_beta_headers"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// keyring builds the test keyring the way the daemon does: the master key,
// plus an admin and a viewer key loaded from a keys file.
func keyring(t *testing.T) *httpapi.Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	data, err := json.Marshal([]httpapi.Key{
		{Name: "ops", SHA256: sha256Hex(adminKey), Role: httpapi.RoleAdmin},
		{Name: "dashboard", SHA256: sha256Hex(viewerKey), Role: httpapi.RoleViewer},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	keys, err := httpapi.LoadKeys(path)
	require.NoError(t, err)
	kr, err := httpapi.NewKeyring(masterKey, keys)
	require.NoError(t, err)
	require.Equal(t, 3, kr.Len())
	return kr
}

// env is one API server backed by a real embedded NATS, a real worker
// serving the micro service, a subscriber and the metrics.
type env struct {
	api      *httptest.Server
	upstream *testbed.Upstream
	sub      *subscriber.Subscriber
	met      *metrics.Metrics
}

// setup starts the whole stack as the daemon wires it, and waits until the
// worker's start-up reload is recorded, the lease is held, and the
// subscriber serves the stored version.
func setup(t *testing.T) *env {
	t.Helper()
	met := metrics.New()
	var sub *subscriber.Subscriber
	s := testbed.NewStack(t, testbed.Serve(testbed.DocUpstream), worker.Config{
		ReplicaID:     replicaID,
		CheckInterval: time.Hour, // the schedule never ticks during a test
	}, worker.Deps{Metrics: met})
	sub, err := subscriber.New(s.Node.NC, subscriber.WithOnUpdate(func(v *betasync.Snapshot) { met.SetVersion(v.Version) }))
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	testbed.Run(t, s.Worker)

	var st betasync.ScheduleStatus
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		st, err = s.Client.Status(ctx)
		return err == nil && st.LastReload != nil && st.LockHolder == replicaID
	}, waitFor, tick, "the worker's start-up reload and lease")
	require.Eventually(t, func() bool { return sub.Current().Version == st.ConfigVersion }, waitFor, tick,
		"the subscriber serves version %d", st.ConfigVersion)

	return &env{api: newAPI(t, s.Client, sub, met), upstream: s.Upstream, sub: sub, met: met}
}

// setupNoWorker wires the API to a NATS on which no worker answers.
func setupNoWorker(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	met := metrics.New()
	sub, err := subscriber.New(nc)
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	return &env{api: newAPI(t, publisher.NewClient(nc), sub, met), sub: sub, met: met}
}

func newAPI(t *testing.T, cmds *publisher.Client, mapping httpapi.Mapping, met *metrics.Metrics) *httptest.Server {
	t.Helper()
	api := httptest.NewServer(httpapi.NewServer(httpapi.Config{
		Commands:       cmds,
		Ready:          cmds.Ping,
		Mapping:        mapping,
		Keys:           keyring(t),
		CommandTimeout: 10 * time.Second,
		Observer:       met,
		Metrics:        met.Handler(),
	}))
	t.Cleanup(api.Close)
	return api
}

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
	path   string // the request's path, which decides the error shape
}

// auth sets an API key on a request.
type auth func(*http.Request)

func bearer(key string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
}

func litellmKey(key string) auth {
	return func(r *http.Request) { r.Header.Set("x-litellm-api-key", key) }
}

func noKey(*http.Request) {}

func (e *env) do(t *testing.T, method, path string, a auth) reply {
	t.Helper()
	return e.doWith(t, method, path, func(r *http.Request) { a(r) })
}

func (e *env) doWith(t *testing.T, method, path string, edit func(*http.Request)) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.api.URL+path, nil)
	require.NoError(t, err)
	edit(req)
	resp, err := e.api.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: body, path: req.URL.Path}
}

// object decodes a JSON object reply, keeping each value raw.
func object(t *testing.T, r reply) map[string]json.RawMessage {
	t.Helper()
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	var obj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &obj), "body: %s", r.body)
	return obj
}

// okObject checks a 200 reply and decodes it.
func okObject(t *testing.T, r reply) map[string]json.RawMessage {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	return object(t, r)
}

func assertKeys(t *testing.T, obj map[string]json.RawMessage, keys ...string) {
	t.Helper()
	for _, k := range keys {
		assert.Contains(t, obj, k)
	}
}

func str(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal(raw, &s), "not a string: %s", raw)
	return s
}

func num(t *testing.T, raw json.RawMessage) float64 {
	t.Helper()
	var f float64
	require.NoError(t, json.Unmarshal(raw, &f), "not a number: %s", raw)
	return f
}

func boolean(t *testing.T, raw json.RawMessage) bool {
	t.Helper()
	var b bool
	require.NoError(t, json.Unmarshal(raw, &b), "not a bool: %s", raw)
	return b
}

// assertUTC checks that raw is an RFC 3339 time in UTC, written with "Z",
// or with "+00:00" as LiteLLM's replies write it.
func assertUTC(t *testing.T, raw json.RawMessage) time.Time {
	t.Helper()
	s := str(t, raw)
	ts, err := time.Parse(time.RFC3339, s)
	if !assert.NoError(t, err) {
		return time.Time{}
	}
	ts = ts.UTC()
	assert.True(t, strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "+00:00"), "%q is not UTC", s)
	assert.Equal(t, time.UTC, ts.Location(), "%q", s)
	assert.False(t, ts.IsZero(), "%q", s)
	return ts
}

// apiError is LiteLLM's error detail; Param is raw so null is visible.
type apiError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    string          `json:"code"`
}

// assertError checks an error reply: status, LiteLLM's shape with all four
// keys, a message, and the status as code. It returns the detail. On
// LiteLLM's own endpoints (a "detail" body, FastAPI's shape) it reads the
// detail into the same form: the message, our "type", and for 422 the
// parameter named in loc.
func assertError(t *testing.T, r reply, status int) apiError {
	t.Helper()
	assert.Equal(t, status, r.status, "body: %s", r.body)
	obj := object(t, r)
	// LiteLLM's four routes answer FastAPI's {"detail"} (but 401 as
	// LiteLLM's auth layer does, {"error"}); our routes answer {"error"}.
	litellm := r.path == pathReload || r.path == pathSchedule || r.path == pathStatus
	if r.path != "" {
		if litellm && status != http.StatusUnauthorized {
			require.Contains(t, obj, "detail", "LiteLLM's route %s answers {\"detail\"}: %s", r.path, r.body)
		} else {
			require.NotContains(t, obj, "detail", "route %s answers {\"error\"}: %s", r.path, r.body)
		}
	}
	if d, ok := obj["detail"]; ok {
		e := apiError{Code: strconv.Itoa(status), Param: json.RawMessage("null")}
		if status == http.StatusUnprocessableEntity {
			var items []struct {
				Loc []string `json:"loc"`
				Msg string   `json:"msg"`
			}
			require.NoError(t, json.Unmarshal(d, &items), "body: %s", r.body)
			require.Len(t, items, 1)
			require.Len(t, items[0].Loc, 2)
			e.Message = items[0].Msg + " (" + strings.Join(items[0].Loc, ".") + ")"
			e.Param = json.RawMessage(strconv.Quote(items[0].Loc[1]))
		} else {
			e.Message = str(t, d)
		}
		if raw, ok := obj["type"]; ok {
			e.Type = str(t, raw)
		}
		assert.NotEmpty(t, e.Message)
		return e
	}
	require.Contains(t, obj, "error", "body: %s", r.body)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(obj["error"], &fields))
	assertKeys(t, fields, "message", "type", "param", "code")
	var e apiError
	require.NoError(t, json.Unmarshal(obj["error"], &e))
	assert.NotEmpty(t, e.Message)
	assert.NotEmpty(t, e.Type)
	assert.Equal(t, strconv.Itoa(status), e.Code)
	return e
}

func TestEndpoints(t *testing.T) {
	e := setup(t)
	var version float64

	t.Run("reload", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodPost, pathReload, bearer(masterKey)))
		assertKeys(t, obj, "message", "status", "providers_count", "timestamp", "version", "changed", "source", "hash")
		assert.Equal(t, betasync.StatusSuccess, str(t, obj["status"]))
		assert.NotEmpty(t, str(t, obj["message"]))
		assert.Positive(t, num(t, obj["providers_count"]))
		assertUTC(t, obj["timestamp"])
		version = num(t, obj["version"])
		assert.Positive(t, version)
		// The start-up reload already stored this document.
		assert.False(t, boolean(t, obj["changed"]))
		assert.Equal(t, betasync.SourceRemote, str(t, obj["source"]))
		assert.Len(t, str(t, obj["hash"]), 64)
	})

	t.Run("schedule", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodPost, pathSchedule+"?hours=24", bearer(masterKey)))
		assertKeys(t, obj, "message", "status", "interval_hours", "next_run", "timestamp")
		assert.Equal(t, betasync.StatusSuccess, str(t, obj["status"]))
		assert.NotEmpty(t, str(t, obj["message"]))
		assert.InDelta(t, 24.0, num(t, obj["interval_hours"]), 0)
		next := assertUTC(t, obj["next_run"])
		now := assertUTC(t, obj["timestamp"])
		assert.False(t, next.Before(now), "next_run %s is before timestamp %s", next, now)
	})

	t.Run("status", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodGet, pathStatus, bearer(masterKey)))
		assertKeys(t, obj, "scheduled", "interval_hours", "last_run", "next_run", "last_success", "last_error",
			"config_version", "config_source", "config_hash", "lock_holder", "last_reload", "next_scheduled_run")
		assert.True(t, boolean(t, obj["scheduled"]))
		assert.InDelta(t, 24.0, num(t, obj["interval_hours"]), 0)
		// As in LiteLLM: no reload since the schedule was set.
		assert.JSONEq(t, "null", string(obj["last_run"]))
		assert.JSONEq(t, "null", string(obj["next_run"]))
		assertUTC(t, obj["last_reload"])
		assertUTC(t, obj["next_scheduled_run"])
		assertUTC(t, obj["last_success"])
		assert.JSONEq(t, "null", string(obj["last_error"]))
		assert.InDelta(t, version, num(t, obj["config_version"]), 0)
		assert.Equal(t, betasync.SourceRemote, str(t, obj["config_source"]))
		assert.Len(t, str(t, obj["config_hash"]), 64)
		assert.Equal(t, replicaID, str(t, obj["lock_holder"]))
	})

	t.Run("cancel", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodDelete, pathSchedule, bearer(masterKey)))
		assertKeys(t, obj, "message", "status", "timestamp")
		assert.Equal(t, betasync.StatusSuccess, str(t, obj["status"]))
		assert.NotEmpty(t, str(t, obj["message"]))
		assertUTC(t, obj["timestamp"])
	})

	t.Run("mapping", func(t *testing.T) {
		require.Eventually(t, func() bool { return float64(e.sub.Current().Version) == version }, waitFor, tick)
		obj := okObject(t, e.do(t, http.MethodGet, pathMapping, bearer(masterKey)))
		assertKeys(t, obj, "version", "hash", "source", "fetched_at", "config")
		assert.InDelta(t, version, num(t, obj["version"]), 0)
		assert.Equal(t, e.sub.Current().Hash(), str(t, obj["hash"]))
		assert.Equal(t, betasync.SourceRemote, str(t, obj["source"]))
		assertUTC(t, obj["fetched_at"])
		assertUTC(t, obj["applied_at"])
		var cfg map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(obj["config"], &cfg))
		assert.Contains(t, cfg, "anthropic")
		m, err := betasync.Parse(obj["config"])
		require.NoError(t, err)
		assert.Equal(t, str(t, obj["hash"]), m.Hash())
	})

	t.Run("healthz", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodGet, "/healthz", noKey))
		assert.Equal(t, "ok", str(t, obj["status"]))
	})

	t.Run("readyz", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodGet, "/readyz", noKey))
		assert.Equal(t, "ready", str(t, obj["status"]))
		assert.InDelta(t, version, num(t, obj["version"]), 0)
	})

	t.Run("metrics", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/metrics", noKey)
		require.Equal(t, http.StatusOK, r.status)
		body := string(r.body)
		assert.Contains(t, body, `betasync_http_requests_total{code="200",method="POST",route="/reload/anthropic_beta_headers"} 1`)
		assert.Contains(t, body, `betasync_http_requests_total{code="200",method="GET",route="/schedule/anthropic_beta_headers_reload/status"} 1`)
		assert.Contains(t, body, `betasync_http_requests_total{code="200",method="DELETE",route="/schedule/anthropic_beta_headers_reload"} 1`)
		assert.Contains(t, body, `betasync_reloads_total{outcome="unchanged",trigger="manual"} 1`)
		assert.Contains(t, body, "betasync_config_version "+strconv.FormatFloat(version, 'f', -1, 64)+"\n")
		assert.Contains(t, body, "betasync_lease_holder 1\n")
	})
}

func TestAuth(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name   string
		method string
		path   string
		auth   auth
		want   int
	}{
		{"no key", http.MethodGet, pathStatus, noKey, http.StatusUnauthorized},
		{"no key mapping", http.MethodGet, pathMapping, noKey, http.StatusUnauthorized},
		{"no key reload", http.MethodPost, pathReload, noKey, http.StatusUnauthorized},
		{"wrong bearer key", http.MethodGet, pathStatus, bearer("sk-wrong"), http.StatusUnauthorized},
		{"wrong x-litellm-api-key", http.MethodGet, pathStatus, litellmKey("sk-wrong"), http.StatusUnauthorized},
		{"key hash as key", http.MethodGet, pathStatus, bearer(sha256Hex(adminKey)), http.StatusUnauthorized},
		{"basic scheme", http.MethodGet, pathStatus, func(r *http.Request) { r.SetBasicAuth("admin", masterKey) }, http.StatusUnauthorized},
		{"empty bearer", http.MethodGet, pathStatus, func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, http.StatusUnauthorized},

		{"bearer master", http.MethodGet, pathStatus, bearer(masterKey), http.StatusOK},
		{"lower-case bearer master", http.MethodGet, pathStatus, func(r *http.Request) { r.Header.Set("Authorization", "bearer "+masterKey) }, http.StatusOK},
		{"x-litellm-api-key master", http.MethodGet, pathStatus, litellmKey(masterKey), http.StatusOK},
		{"x-litellm-api-key master reload", http.MethodPost, pathReload, litellmKey(masterKey), http.StatusOK},

		{"viewer status", http.MethodGet, pathStatus, bearer(viewerKey), http.StatusOK},
		{"viewer mapping", http.MethodGet, pathMapping, bearer(viewerKey), http.StatusOK},
		{"viewer reload", http.MethodPost, pathReload, bearer(viewerKey), http.StatusForbidden},
		{"viewer schedule", http.MethodPost, pathSchedule + "?hours=24", bearer(viewerKey), http.StatusForbidden},
		{"viewer cancel", http.MethodDelete, pathSchedule, bearer(viewerKey), http.StatusForbidden},

		{"admin status", http.MethodGet, pathStatus, bearer(adminKey), http.StatusOK},
		{"admin mapping", http.MethodGet, pathMapping, bearer(adminKey), http.StatusOK},
		{"admin reload", http.MethodPost, pathReload, bearer(adminKey), http.StatusOK},
		{"admin schedule", http.MethodPost, pathSchedule + "?hours=24", bearer(adminKey), http.StatusOK},
		{"admin cancel", http.MethodDelete, pathSchedule, bearer(adminKey), http.StatusOK},
		{"admin via x-litellm-api-key", http.MethodGet, pathStatus, litellmKey(adminKey), http.StatusOK},

		{"healthz without key", http.MethodGet, "/healthz", noKey, http.StatusOK},
		{"readyz without key", http.MethodGet, "/readyz", noKey, http.StatusOK},
		{"metrics without key", http.MethodGet, "/metrics", noKey, http.StatusOK},
		{"healthz with a wrong key", http.MethodGet, "/healthz", bearer("sk-wrong"), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.auth)
			switch tt.want {
			case http.StatusOK:
				assert.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			case http.StatusForbidden:
				got := assertError(t, r, tt.want)
				assert.Equal(t, betasync.EFORBIDDEN, got.Type)
				assert.Contains(t, got.Message, httpapi.RoleViewer)
				assert.NotContains(t, string(r.body), viewerKey)
			default:
				got := assertError(t, r, tt.want)
				if tt.path == pathMapping {
					assert.Equal(t, betasync.EUNAUTHORIZED, got.Type)
					assert.JSONEq(t, "null", string(got.Param))
				} else { // LiteLLM's auth layer's answer
					assert.Equal(t, "auth_error", got.Type)
					assert.True(t, strings.HasPrefix(got.Message, "Authentication Error, "), got.Message)
					assert.JSONEq(t, `"None"`, string(got.Param))
				}
			}
		})
	}

	t.Run("viewer changed nothing", func(t *testing.T) {
		// The admin's cancel was the last schedule write to succeed.
		obj := okObject(t, e.do(t, http.MethodGet, pathStatus, bearer(viewerKey)))
		assert.False(t, boolean(t, obj["scheduled"]))
	})
}

func TestScheduleBadInput(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name  string
		query string
		want  int
	}{
		{"hours missing", "", http.StatusUnprocessableEntity},
		{"hours empty", "?hours=", http.StatusUnprocessableEntity},
		{"hours not a number", "?hours=abc", http.StatusUnprocessableEntity},
		{"hours with a unit", "?hours=24h", http.StatusUnprocessableEntity},
		{"hours zero", "?hours=0", http.StatusBadRequest},
		{"hours negative", "?hours=-1", http.StatusBadRequest},
		{"hours NaN", "?hours=NaN", http.StatusBadRequest},
		{"hours Inf", "?hours=Inf", http.StatusBadRequest},
		{"hours -Inf", "?hours=-Inf", http.StatusBadRequest},
		{"hours overflow", "?hours=1e999", http.StatusBadRequest},
		{"hours over a year", "?hours=8761", http.StatusBadRequest},
		{"hours too small", "?hours=0.001", http.StatusBadRequest},
	}
	// schedule is the part of the status a bad request must not change.
	schedule := func(t *testing.T) map[string]json.RawMessage {
		t.Helper()
		obj := okObject(t, e.do(t, http.MethodGet, pathStatus, bearer(masterKey)))
		return map[string]json.RawMessage{
			"scheduled":      obj["scheduled"],
			"interval_hours": obj["interval_hours"],
			"next_run":       obj["next_run"],
			"last_run":       obj["last_run"],
			"config_version": obj["config_version"],
		}
	}
	states := []struct {
		name  string
		setup func(t *testing.T)
	}{
		{"unscheduled", func(*testing.T) {}},
		{"scheduled 24h", func(t *testing.T) {
			okObject(t, e.do(t, http.MethodPost, pathSchedule+"?hours=24", bearer(masterKey)))
		}},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			st.setup(t)
			before := schedule(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got := assertError(t, e.do(t, http.MethodPost, pathSchedule+tt.query, bearer(masterKey)), tt.want)
					assert.Contains(t, strings.ToLower(got.Message), "hours")
					if tt.want == http.StatusUnprocessableEntity { // FastAPI's loc names it
						assert.JSONEq(t, `"hours"`, string(got.Param))
					}
					after := schedule(t)
					for k, v := range before {
						assert.JSONEq(t, string(v), string(after[k]), "%s changed", k)
					}
				})
			}
		})
	}
}

func TestReloadUpstreamFailure(t *testing.T) {
	e := setup(t)
	before := okObject(t, e.do(t, http.MethodGet, pathMapping, bearer(masterKey)))

	e.upstream.Set(testbed.Status(http.StatusInternalServerError))
	got := assertError(t, e.do(t, http.MethodPost, pathReload, bearer(masterKey)), http.StatusBadGateway)
	assert.Equal(t, betasync.EUPSTREAM, got.Type)
	assert.Contains(t, got.Message, "500")

	t.Run("the last good mapping is still served", func(t *testing.T) {
		after := okObject(t, e.do(t, http.MethodGet, pathMapping, bearer(masterKey)))
		for _, k := range []string{"version", "hash", "source", "fetched_at", "config"} {
			assert.JSONEq(t, string(before[k]), string(after[k]), k)
		}
	})

	t.Run("status reports the failure", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodGet, pathStatus, bearer(masterKey)))
		assert.JSONEq(t, string(before["version"]), string(obj["config_version"]))
		assert.JSONEq(t, string(before["hash"]), string(obj["config_hash"]))
		var lastErr betasync.RunError
		require.NoError(t, json.Unmarshal(obj["last_error"], &lastErr))
		assert.Contains(t, lastErr.Message, "500")
		_, offset := lastErr.Time.Zone()
		assert.Zero(t, offset, "UTC")
	})

	t.Run("metrics count the failure", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/metrics", noKey)
		assert.Contains(t, string(r.body), `betasync_reloads_total{outcome="error",trigger="manual"} 1`)
		assert.Contains(t, string(r.body), `betasync_http_requests_total{code="502",method="POST",route="/reload/anthropic_beta_headers"} 1`)
	})

	t.Run("a later reload succeeds again", func(t *testing.T) {
		e.upstream.Set(testbed.Serve(testbed.DocUpstream))
		obj := okObject(t, e.do(t, http.MethodPost, pathReload, bearer(masterKey)))
		assert.Equal(t, betasync.StatusSuccess, str(t, obj["status"]))
		assert.JSONEq(t, string(before["version"]), string(obj["version"]))
	})
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := setupNoWorker(t)
	tests := []struct {
		name      string
		method    string
		path      string
		want      int
		wantAllow string
	}{
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound, ""},
		{"unknown path with a key", http.MethodPost, "/reload/something_else", http.StatusNotFound, ""},
		{"status with a trailing segment", http.MethodGet, pathStatus + "/x", http.StatusNotFound, ""},
		{"GET reload", http.MethodGet, pathReload, http.StatusMethodNotAllowed, "POST"},
		{"PUT schedule", http.MethodPut, pathSchedule, http.StatusMethodNotAllowed, "POST, DELETE"},
		{"POST status", http.MethodPost, pathStatus, http.StatusMethodNotAllowed, "GET"},
		{"DELETE mapping", http.MethodDelete, pathMapping, http.StatusMethodNotAllowed, "GET"},
		{"POST healthz", http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, bearer(masterKey))
			got := assertError(t, r, tt.want)
			if got.Message != "Method Not Allowed" { // FastAPI's 405 on LiteLLM's endpoints
				assert.Contains(t, got.Message, tt.path)
			}
			assert.Equal(t, tt.wantAllow, r.header.Get("Allow"))
		})
	}
	t.Run("counted without the raw path", func(t *testing.T) {
		body := string(e.do(t, http.MethodGet, "/metrics", noKey).body)
		assert.Contains(t, body, `betasync_http_requests_total{code="404",method="GET",route="unmatched"} 2`)
		assert.Contains(t, body, `betasync_http_requests_total{code="405",method="GET",route="/reload/anthropic_beta_headers"} 1`,
			"a 405 on a known route is labelled with the route")
		assert.NotContains(t, body, "/nope")
	})
}

func TestNoWorker(t *testing.T) {
	e := setupNoWorker(t)
	tests := []struct {
		name   string
		method string
		path   string
	}{
		{"reload", http.MethodPost, pathReload},
		{"status", http.MethodGet, pathStatus},
		{"schedule", http.MethodPost, pathSchedule + "?hours=24"},
		{"cancel", http.MethodDelete, pathSchedule},
		{"readyz", http.MethodGet, "/readyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := assertError(t, e.do(t, tt.method, tt.path, bearer(masterKey)), http.StatusServiceUnavailable)
			assert.Equal(t, betasync.EUNAVAILABLE, got.Type)
			assert.Contains(t, got.Message, "worker")
			assert.JSONEq(t, "null", string(got.Param))
		})
	}
	t.Run("healthz", func(t *testing.T) {
		okObject(t, e.do(t, http.MethodGet, "/healthz", noKey))
	})
	t.Run("mapping serves the embedded default", func(t *testing.T) {
		obj := okObject(t, e.do(t, http.MethodGet, pathMapping, bearer(viewerKey)))
		assert.JSONEq(t, "0", string(obj["version"]))
		assert.Equal(t, betasync.SourceEmbedded, str(t, obj["source"]))
		assert.Equal(t, betasync.Default().Hash(), str(t, obj["hash"]))
		assert.JSONEq(t, "null", string(obj["fetched_at"]))
	})
}

// TestLiteLLMCurlFlow runs LiteLLM's documented curl sequence end to end.
func TestLiteLLMCurlFlow(t *testing.T) {
	e := setup(t)
	key := bearer(masterKey)

	reload := okObject(t, e.do(t, http.MethodPost, pathReload, key))
	assert.Equal(t, betasync.StatusSuccess, str(t, reload["status"]))

	sched := okObject(t, e.do(t, http.MethodPost, pathSchedule+"?hours=24", key))
	assert.Equal(t, betasync.StatusSuccess, str(t, sched["status"]))

	status := okObject(t, e.do(t, http.MethodGet, pathStatus, key))
	assert.True(t, boolean(t, status["scheduled"]))
	assert.InDelta(t, 24.0, num(t, status["interval_hours"]), 0)
	assert.JSONEq(t, string(sched["next_run"]), string(status["next_scheduled_run"]))
	assert.JSONEq(t, string(reload["version"]), string(status["config_version"]))

	okObject(t, e.do(t, http.MethodPost, pathReload, key))
	status = okObject(t, e.do(t, http.MethodGet, pathStatus, key))
	last := assertUTC(t, status["last_run"])
	next := assertUTC(t, status["next_run"])
	assert.Equal(t, last.Add(24*time.Hour), next)

	cancel := okObject(t, e.do(t, http.MethodDelete, pathSchedule, key))
	assert.Equal(t, betasync.StatusSuccess, str(t, cancel["status"]))

	status = okObject(t, e.do(t, http.MethodGet, pathStatus, key))
	assert.False(t, boolean(t, status["scheduled"]))
	assert.JSONEq(t, "null", string(status["interval_hours"]))
	assert.JSONEq(t, "null", string(status["next_run"]))
	assert.JSONEq(t, "null", string(status["last_run"]), "as in LiteLLM, after a cancel")
	assertUTC(t, status["last_reload"])
}

func TestRequestID(t *testing.T) {
	e := setupNoWorker(t)
	get := func(t *testing.T, path string, id string) string {
		t.Helper()
		r := e.doWith(t, http.MethodGet, path, func(r *http.Request) {
			if id != "" {
				r.Header.Set("X-Request-Id", id)
			}
		})
		return r.header.Get("X-Request-Id")
	}
	tests := []struct {
		name string
		path string
		sent string
		echo bool
	}{
		{"echoed", "/healthz", "req-0123", true},
		{"echoed on an error", pathStatus, "req-4567", true},
		{"echoed on not found", "/nope", "req-89ab", true},
		{"generated when absent", "/healthz", "", false},
		{"generated on an error", pathStatus, "", false},
		{"replaced when too long", "/healthz", strings.Repeat("x", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(t, tt.path, tt.sent)
			if tt.echo {
				assert.Equal(t, tt.sent, got)
				return
			}
			assert.NotEmpty(t, got)
			assert.NotEqual(t, tt.sent, got)
			assert.LessOrEqual(t, len(got), 128)
		})
	}
	t.Run("generated ids differ", func(t *testing.T) {
		first, second := get(t, "/healthz", ""), get(t, "/healthz", "")
		assert.NotEqual(t, first, second)
	})
}

func TestNewKeyring(t *testing.T) {
	good := sha256Hex("secret")
	tests := []struct {
		name    string
		master  string
		keys    []httpapi.Key
		wantErr string
		wantLen int
	}{
		{"master only", "sk-master", nil, "", 1},
		{"no keys at all", "", nil, "", 0},
		{"master and keys", "sk-master", []httpapi.Key{{Name: "a", SHA256: good, Role: httpapi.RoleAdmin}, {Name: "v", SHA256: strings.ToUpper(good), Role: httpapi.RoleViewer}}, "", 3},
		{"bad role", "", []httpapi.Key{{Name: "a", SHA256: good, Role: "root"}}, "role", 0},
		{"empty role", "", []httpapi.Key{{Name: "a", SHA256: good}}, "role", 0},
		{"sha256 not hex", "", []httpapi.Key{{Name: "a", SHA256: strings.Repeat("z", 64), Role: httpapi.RoleAdmin}}, "sha256", 0},
		{"sha256 too short", "", []httpapi.Key{{Name: "a", SHA256: good[:62], Role: httpapi.RoleAdmin}}, "sha256", 0},
		{"sha256 too long", "", []httpapi.Key{{Name: "a", SHA256: good + "00", Role: httpapi.RoleAdmin}}, "sha256", 0},
		{"sha256 missing", "", []httpapi.Key{{Name: "a", Role: httpapi.RoleAdmin}}, "sha256", 0},
		{"name missing", "", []httpapi.Key{{SHA256: good, Role: httpapi.RoleAdmin}}, "name", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := httpapi.NewKeyring(tt.master, tt.keys)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, kr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantLen, kr.Len())
		})
	}
}

func TestLoadKeys(t *testing.T) {
	good := sha256Hex("secret")
	tests := []struct {
		name    string
		content string
		want    []httpapi.Key
		wantErr bool
	}{
		{"array", `[{"name": "ops", "sha256": "` + good + `", "role": "admin"}]`, []httpapi.Key{{Name: "ops", SHA256: good, Role: httpapi.RoleAdmin}}, false},
		{"empty array", `[]`, []httpapi.Key{}, false},
		{"unknown field", `[{"name": "ops", "sha256": "` + good + `", "role": "admin", "secret": "sk-x"}]`, nil, true},
		{"object", `{"name": "ops", "sha256": "` + good + `", "role": "admin"}`, nil, true},
		{"string", `"ops"`, nil, true},
		{"number", `42`, nil, true},
		{"null", `null`, nil, true},
		{"empty file", ``, nil, true},
		{"trailing data", `[] {"name": "x"}`, nil, true},
		{"truncated", `[{"name": "ops"`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.json")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			keys, err := httpapi.LoadKeys(path)
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), path)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, keys)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := httpapi.LoadKeys(filepath.Join(t.TempDir(), "absent.json"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// Without Commands (a worker-only replica) the server has health and
// metrics only; the admin endpoints do not exist there.
func TestOpsOnlyServer(t *testing.T) {
	met := metrics.New()
	ts := httptest.NewServer(httpapi.NewServer(httpapi.Config{Metrics: met.Handler(), Observer: met}))
	t.Cleanup(ts.Close)
	for path, want := range map[string]int{
		"/healthz":                       http.StatusOK,
		"/metrics":                       http.StatusOK,
		"/readyz":                        http.StatusOK,
		"/anthropic_beta_headers":        http.StatusNotFound,
		"/reload/anthropic_beta_headers": http.StatusNotFound,
	} {
		t.Run(path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, want, resp.StatusCode)
		})
	}
}

// Probes may use HEAD.
func TestProbesAcceptHEAD(t *testing.T) {
	ts := httptest.NewServer(httpapi.NewServer(httpapi.Config{}))
	t.Cleanup(ts.Close)
	for _, path := range []string{"/healthz", "/readyz"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, ts.URL+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}

// A client can send any token as a method; the metric label stays bounded.
func TestMetricsMethodLabelIsBounded(t *testing.T) {
	met := metrics.New()
	ts := httptest.NewServer(httpapi.NewServer(httpapi.Config{Metrics: met.Handler(), Observer: met}))
	t.Cleanup(ts.Close)
	for _, m := range []string{"XMETHOD1", "XMETHOD2", "BREW"} {
		req, err := http.NewRequestWithContext(t.Context(), m, ts.URL+"/whatever", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.NotContains(t, string(body), "XMETHOD")
	assert.Contains(t, string(body), `betasync_http_requests_total{code="404",method="other",route="unmatched"} 3`)
}

// x-litellm-api-key wins over Authorization (as in LiteLLM), so a client
// that uses Authorization for something else still authenticates. (On a
// betasync route: LiteLLM's four answer LiteLLM's texts, see
// litellm_routes_test.go.)
func TestAuthHeaderPriority(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name    string
		headers map[string]string
		want    int
		message string
	}{
		{"basic auth beside a valid litellm key", map[string]string{"Authorization": "Basic abc", "x-litellm-api-key": masterKey}, http.StatusOK, ""},
		{"basic auth alone", map[string]string{"Authorization": "Basic abc"}, http.StatusUnauthorized, "unsupported Authorization scheme"},
		{"key without scheme", map[string]string{"Authorization": masterKey}, http.StatusUnauthorized, "unsupported Authorization scheme"},
		{"bearer without key", map[string]string{"Authorization": "Bearer "}, http.StatusUnauthorized, "missing API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.api.URL+"/anthropic_beta_headers", nil)
			require.NoError(t, err)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.want, resp.StatusCode, "%s", body)
			assert.Contains(t, string(body), tt.message)
		})
	}
}
