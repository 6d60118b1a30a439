package httpapi_test

// LiteLLM's own route tests, replayed against betasync's real HTTP server
// (a real embedded NATS, a real worker behind the micro service, real KV).
//
// Followed: BerriAI/litellm
//   tests/test_litellm/proxy/proxy_server/test_routes_anthropic_beta.py
//     at commit 1a0ad62a0f98eab984fa8250dd0bdf03dab1119e
//   tests/test_litellm/proxy/proxy_server/conftest.py (normalize, auth_as)
//     at commit dd437fcbd76f22543c36847ec4fe003059afb931
//   litellm/anthropic_beta_headers_manager.py (the loader)
//     at commit 076d1da40725b5dac016ebfb505c264d440bee9e
//
// Each Python test is one subtest of the same name. What the Python tests
// assert with normalize(body, VOLATILE | {"timestamp"}) == {...} is
// asserted here on LiteLLM's keys (timestamp volatile); betasync's extra
// keys are allowed only from the documented list below, so a new key is a
// deliberate change. Where a LiteLLM test pins its own storage (a Prisma
// upsert, a DB row delete), the betasync equivalent is asserted (the KV
// schedule record). LiteLLM's "no DB" cases have no DB to miss here: the
// equivalent is "no worker answers" (503 {"detail"}), and for the status,
// an API replica that reads KV itself, as LiteLLM answers the unscheduled
// status without a DB.
//
// Not visible to this author: proxy_server.py itself (the file is too
// large for the reference index). LiteLLM's 403 text beyond "Admin role
// required" and its 401 body are encoded from LiteLLM's auth layer as
// known (ProxyException "Authentication Error, ...", type auth_error,
// param "None", code "401"), not from a pinned line of that file.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

// internalUserKey holds LiteLLM's internal_user role (auth_as(INTERNAL_USER)).
const internalUserKey = "sk-internal-user-0123456789"

// litellmStubDoc is _stub_reload_beta_headers's document, made valid for
// betasync (LiteLLM's stub sections hold a list, which LiteLLM never reads;
// betasync's validation wants {beta: name|null}): two providers, an alias,
// a description. LiteLLM counts 2 providers; so must we.
var litellmStubDoc = []byte(`{
  "anthropic": {"foo": "foo"},
  "openai": {"bar": "bar"},
  "provider_aliases": {"a": "b"},
  "description": "test"
}`)

// Extra keys betasync adds to LiteLLM's replies (README, "Compatibility
// with LiteLLM").
var litellmExtras = map[string][]string{
	"reload":   {"summary", "warnings", "version", "changed", "source", "hash", "url", "changes", "redundant_overrides"},
	"schedule": {"next_run"},
	"cancel":   {},
	"status": {"last_reload", "next_scheduled_run", "last_success", "last_error", "config_version", "config_source",
		"config_hash", "lock_holder", "schedule_error", "warning"},
}

// litellmEnv is the API of a running stack, with the keyring of auth_as:
// the master key (PROXY_ADMIN) and an internal_user key.
type litellmEnv struct {
	*env
	stack *testbed.Stack
}

func litellmKeyring(t *testing.T) *httpapi.Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	data, err := json.Marshal([]httpapi.Key{
		{Name: "dashboard", SHA256: sha256Hex(viewerKey), Role: httpapi.RoleViewer},
		{Name: "alice", SHA256: sha256Hex(internalUserKey), Role: "internal_user"},
		{Name: "ops", SHA256: sha256Hex(adminKey), Role: "proxy_admin"},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	keys, err := httpapi.LoadKeys(path)
	require.NoError(t, err)
	kr, err := httpapi.NewKeyring(masterKey, keys)
	require.NoError(t, err, "a keys file naming LiteLLM's roles loads")
	return kr
}

func setupLiteLLM(t *testing.T, doc []byte) *litellmEnv {
	t.Helper()
	s := testbed.NewStack(t, testbed.Serve(doc), worker.Config{ReplicaID: replicaID, CheckInterval: time.Hour}, worker.Deps{})
	testbed.Run(t, s.Worker)
	var st betasync.ScheduleStatus
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var err error
		st, err = s.Client.Status(ctx)
		return err == nil && st.LastReload != nil && st.LockHolder == replicaID
	}, waitFor, tick, "the worker's start-up reload and lease")
	sub, err := subscriber.New(s.NC)
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	require.Eventually(t, func() bool { return sub.Current().Version == st.ConfigVersion }, waitFor, tick,
		"the subscriber serves version %d", st.ConfigVersion)
	api := newLiteLLMAPI(t, s.Client, sub, s.NC)
	return &litellmEnv{env: &env{api: api, upstream: s.Upstream, sub: sub}, stack: s}
}

func newLiteLLMAPI(t *testing.T, cmds *publisher.Client, mapping httpapi.Mapping, conn *nats.Conn) *httptest.Server {
	t.Helper()
	api := httptest.NewServer(httpapi.NewServer(httpapi.Config{
		Commands: cmds, Mapping: mapping, Keys: litellmKeyring(t), CommandTimeout: 5 * time.Second,
		StatusFallback: func(ctx context.Context) (betasync.ScheduleStatus, error) {
			js, err := jetstream.New(conn)
			if err != nil {
				return betasync.ScheduleStatus{}, err
			}
			return worker.StatusFromKV(ctx, js, nil)
		},
	}))
	t.Cleanup(api.Close)
	return api
}

// normalized returns LiteLLM's keys of a reply, with timestamp volatile
// (_VOLATILE), and checks that every other key is a documented extra.
func normalized(t *testing.T, r reply, route string, litellmKeys ...string) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body))
	out := map[string]any{}
	for _, k := range litellmKeys {
		v, ok := body[k]
		if !assert.True(t, ok, "LiteLLM's key %q is missing: %s", k, r.body) {
			continue
		}
		if k == "timestamp" {
			v = "<VOLATILE>"
		}
		out[k] = v
	}
	for k := range body {
		if _, ok := out[k]; !ok {
			assert.Contains(t, litellmExtras[route], k, "undocumented extra key in the %s reply", route)
		}
	}
	return out
}

// detail returns the "detail" of a FastAPI error body, as
// response.json().get("detail", "") reads it.
func detail(t *testing.T, r reply) string {
	t.Helper()
	var body map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &body), "body: %s", r.body)
	raw, ok := body["detail"]
	require.True(t, ok, "no detail: %s", r.body)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (e *litellmEnv) schedule(t *testing.T) kv.Schedule {
	t.Helper()
	s, _, err := e.stack.Store.Schedules.Get(t.Context())
	require.NoError(t, err)
	return s
}

func TestLiteLLMRoutesAnthropicBeta(t *testing.T) {
	e := setupLiteLLM(t, litellmStubDoc)
	admin := bearer(masterKey) // auth_as(PROXY_ADMIN)
	internalUser := bearer(internalUserKey)

	// POST /reload/anthropic_beta_headers

	t.Run("test_reload_anthropic_beta_headers_admin_success", func(t *testing.T) {
		r := e.do(t, http.MethodPost, pathReload, admin)
		assert.Equal(t, map[string]any{
			"message":         "Anthropic beta headers configuration reloaded successfully! 2 providers updated.",
			"status":          "success",
			"providers_count": float64(2),
			"timestamp":       "<VOLATILE>",
		}, normalized(t, r, "reload", "message", "status", "providers_count", "timestamp"))
		// "And the upsert was actually invoked": the reload ran and was
		// recorded in the shared schedule record.
		assert.NotNil(t, e.schedule(t).LastRun)
	})

	t.Run("test_reload_anthropic_beta_headers_preserves_existing_interval", func(t *testing.T) {
		okObject(t, e.do(t, http.MethodPost, pathSchedule+"?hours=12", admin))
		okObject(t, e.do(t, http.MethodPost, pathReload, admin))
		s := e.schedule(t)
		assert.InDelta(t, 12.0, s.IntervalHours, 0, "a reload keeps the interval")
		okObject(t, e.do(t, http.MethodDelete, pathSchedule, admin))
	})

	t.Run("test_reload_anthropic_beta_headers_not_admin_forbidden", func(t *testing.T) {
		r := e.do(t, http.MethodPost, pathReload, internalUser)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Contains(t, detail(t, r), "Admin role required")
	})

	t.Run("test_reload_anthropic_beta_headers_no_db_returns_500", func(t *testing.T) {
		// betasync: no worker answering is its "no database"; 503.
		ne := setupNoWorkerLiteLLM(t)
		r := ne.do(t, http.MethodPost, pathReload, admin)
		assert.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Contains(t, detail(t, r), "no betasync worker")
	})

	// POST /schedule/anthropic_beta_headers_reload

	t.Run("test_schedule_anthropic_beta_headers_reload_admin_success", func(t *testing.T) {
		r := e.do(t, http.MethodPost, pathSchedule+"?hours=6", admin)
		assert.Equal(t, map[string]any{
			"message":        "Anthropic beta headers reload scheduled for every 6 hours",
			"status":         "success",
			"interval_hours": float64(6),
			"timestamp":      "<VOLATILE>",
		}, normalized(t, r, "schedule", "message", "status", "interval_hours", "timestamp"))
		assert.InDelta(t, 6.0, e.schedule(t).IntervalHours, 0, "stored (LiteLLM: upsert awaited once)")
	})

	t.Run("test_schedule_anthropic_beta_headers_reload_zero_hours_400", func(t *testing.T) {
		r := e.do(t, http.MethodPost, pathSchedule+"?hours=0", admin)
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Contains(t, detail(t, r), "Hours must be greater than 0")
	})

	t.Run("test_schedule_anthropic_beta_headers_reload_not_admin_forbidden", func(t *testing.T) {
		r := e.do(t, http.MethodPost, pathSchedule+"?hours=6", internalUser)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Contains(t, detail(t, r), "Admin role required")
	})

	t.Run("test_schedule_anthropic_beta_headers_reload_missing_hours_422", func(t *testing.T) {
		r := e.do(t, http.MethodPost, pathSchedule, admin)
		assert.Equal(t, http.StatusUnprocessableEntity, r.status)
		var body map[string]any
		require.NoError(t, json.Unmarshal(r.body, &body))
		assert.Contains(t, body, "detail")
		// FastAPI's (pydantic v2) shape for a missing query parameter.
		assert.JSONEq(t, `[{"type": "missing", "loc": ["query", "hours"], "msg": "Field required", "input": null}]`,
			detail(t, r))
	})

	// DELETE /schedule/anthropic_beta_headers_reload

	t.Run("test_cancel_anthropic_beta_headers_reload_admin_success", func(t *testing.T) {
		r := e.do(t, http.MethodDelete, pathSchedule, admin)
		assert.Equal(t, map[string]any{
			"message":   "Anthropic beta headers reload schedule cancelled",
			"status":    "success",
			"timestamp": "<VOLATILE>",
		}, normalized(t, r, "cancel", "message", "status", "timestamp"))
		assert.Zero(t, e.schedule(t).IntervalHours, "the schedule is gone (LiteLLM: the row is deleted)")
	})

	t.Run("test_cancel_anthropic_beta_headers_reload_not_admin_forbidden", func(t *testing.T) {
		r := e.do(t, http.MethodDelete, pathSchedule, internalUser)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Contains(t, detail(t, r), "Admin role required")
	})

	t.Run("test_cancel_anthropic_beta_headers_reload_no_db_returns_500", func(t *testing.T) {
		ne := setupNoWorkerLiteLLM(t)
		r := ne.do(t, http.MethodDelete, pathSchedule, admin)
		assert.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Contains(t, detail(t, r), "no betasync worker")
	})

	// GET /schedule/anthropic_beta_headers_reload/status

	statusKeys := []string{"scheduled", "interval_hours", "last_run", "next_run"}

	t.Run("test_get_anthropic_beta_headers_reload_status_scheduled", func(t *testing.T) {
		okObject(t, e.do(t, http.MethodPost, pathSchedule+"?hours=6", admin))
		r := e.do(t, http.MethodGet, pathStatus, admin)
		assert.Equal(t, map[string]any{
			"scheduled": true, "interval_hours": float64(6), "last_run": nil, "next_run": nil,
		}, normalized(t, r, "status", statusKeys...), "no reload since scheduling: next_run stays null")
	})

	t.Run("test_get_anthropic_beta_headers_reload_status_not_scheduled_no_db", func(t *testing.T) {
		// No worker has ever run (no buckets): the unscheduled status, not an error.
		ne := setupNoWorkerLiteLLM(t)
		r := ne.do(t, http.MethodGet, pathStatus, admin)
		assert.Equal(t, map[string]any{
			"scheduled": false, "interval_hours": nil, "last_run": nil, "next_run": nil,
		}, normalized(t, r, "status", statusKeys...))
	})

	t.Run("test_get_anthropic_beta_headers_reload_status_no_interval_unscheduled", func(t *testing.T) {
		okObject(t, e.do(t, http.MethodPost, pathReload, admin)) // a reload ran while scheduled
		okObject(t, e.do(t, http.MethodDelete, pathSchedule, admin))
		r := e.do(t, http.MethodGet, pathStatus, admin)
		assert.Equal(t, map[string]any{
			"scheduled": false, "interval_hours": nil, "last_run": nil, "next_run": nil,
		}, normalized(t, r, "status", statusKeys...), "after a cancel, last_run is null too")
	})

	t.Run("test_get_anthropic_beta_headers_reload_status_not_admin_forbidden", func(t *testing.T) {
		r := e.do(t, http.MethodGet, pathStatus, internalUser)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Contains(t, detail(t, r), "Admin role required")
	})
}

// setupNoWorkerLiteLLM is an API on a NATS where no worker runs or ever ran.
func setupNoWorkerLiteLLM(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	sub, err := subscriber.New(nc, subscriber.WithoutFleet())
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	return &env{api: newLiteLLMAPI(t, publisher.NewClient(nc), sub, nc), sub: sub}
}

// TestLiteLLMEdge covers the rest of LiteLLM's edge that its route tests do
// not pin: every non-admin role, the auth layer's 401, times, the status
// after a reload, and the status when the workers are gone.
func TestLiteLLMEdge(t *testing.T) {
	e := setupLiteLLM(t, testbed.DocUpstream)
	admin := bearer(masterKey)

	t.Run("LiteLLM's non-admin roles get 403 on all four, status included", func(t *testing.T) {
		for _, role := range []string{"proxy_admin_viewer", "internal_user", "internal_user_viewer", "org_admin", "team", "customer"} {
			key := "sk-" + role + "-0123456789"
			kr, err := httpapi.NewKeyring(masterKey, []httpapi.Key{{Name: role, SHA256: sha256Hex(key), Role: role}})
			require.NoError(t, err, "a keys file naming %s loads", role)
			api := httptest.NewServer(httpapi.NewServer(httpapi.Config{Commands: e.stack.Client, Mapping: e.sub, Keys: kr}))
			re := &env{api: api}
			for _, c := range []struct{ method, path string }{
				{http.MethodPost, pathReload}, {http.MethodPost, pathSchedule + "?hours=6"},
				{http.MethodDelete, pathSchedule}, {http.MethodGet, pathStatus}, {http.MethodGet, pathMapping},
			} {
				r := re.do(t, c.method, c.path, bearer(key))
				assert.Equal(t, http.StatusForbidden, r.status, "%s %s %s: %s", role, c.method, c.path, r.body)
				if c.path != pathMapping {
					assert.Equal(t, "Access denied. Admin role required. Current role: "+role, detail(t, r))
				}
			}
			api.Close()
		}
	})

	t.Run("an unknown role still stops the keyring", func(t *testing.T) {
		_, err := httpapi.NewKeyring(masterKey, []httpapi.Key{{Name: "x", SHA256: sha256Hex("k"), Role: "proxy_admn"}})
		require.Error(t, err)
	})

	t.Run("proxy_admin is admin", func(t *testing.T) {
		okObject(t, e.do(t, http.MethodPost, pathReload, bearer(adminKey)))
	})

	// LiteLLM's texts (litellm/proxy/auth/user_api_key_auth.py, raised as
	// ProxyException by auth_exception_handler.py), without the key LiteLLM
	// echoes after the invalid and malformed ones.
	t.Run("401 as LiteLLM's auth layer answers", func(t *testing.T) {
		for _, tc := range []struct {
			a    auth
			want string
		}{
			{noKey, "Authentication Error, No api key passed in."},
			{bearer("sk-wrong"), "Authentication Error, Invalid proxy server token passed."},
			{func(r *http.Request) { r.Header.Set("Authorization", "Basic c2std3Jvbmc6") }, "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix."},
			{func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix."},
		} {
			for _, route := range []struct{ method, path string }{
				{http.MethodPost, pathReload}, {http.MethodPost, pathSchedule + "?hours=6"},
				{http.MethodDelete, pathSchedule}, {http.MethodGet, pathSchedule + "/status"},
			} {
				r := e.do(t, route.method, route.path, tc.a)
				require.Equal(t, http.StatusUnauthorized, r.status)
				var body struct {
					Error struct {
						Message, Type, Param, Code string
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal(r.body, &body))
				assert.Equal(t, tc.want, body.Error.Message, route.path)
				assert.Equal(t, "auth_error", body.Error.Type)
				assert.Equal(t, "None", body.Error.Param)
				assert.Equal(t, "401", body.Error.Code)
				assert.NotContains(t, string(r.body), "sk-wrong", "the key is never written back")
			}
		}
	})

	t.Run("our routes keep betasync's error shape", func(t *testing.T) {
		got := assertError(t, e.do(t, http.MethodGet, pathMapping, bearer(internalUserKey)), http.StatusForbidden)
		assert.Equal(t, betasync.EFORBIDDEN, got.Type)
	})

	t.Run("405 on LiteLLM's routes is FastAPI's", func(t *testing.T) {
		r := e.do(t, http.MethodGet, pathReload, admin)
		assert.Equal(t, http.StatusMethodNotAllowed, r.status)
		assert.Equal(t, "Method Not Allowed", detail(t, r))
		assert.Equal(t, "POST", r.header.Get("Allow"))
	})

	t.Run("a bad hours value that only betasync rejects says why", func(t *testing.T) {
		r := e.do(t, http.MethodPost, pathSchedule+"?hours=9000", admin)
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Contains(t, detail(t, r), "8760")
		r = e.do(t, http.MethodPost, pathSchedule+"?hours=abc", admin)
		assert.Equal(t, http.StatusUnprocessableEntity, r.status)
		assert.JSONEq(t, `[{"type": "float_parsing", "loc": ["query", "hours"],
			"msg": "Input should be a valid number, unable to parse string as a number", "input": "abc"}]`, detail(t, r))
	})

	t.Run("times as LiteLLM writes them, next_run after a reload", func(t *testing.T) {
		okObject(t, e.do(t, http.MethodPost, pathSchedule+"?hours=6", admin))
		reload := okObject(t, e.do(t, http.MethodPost, pathReload, admin))
		assert.True(t, strings.HasSuffix(str(t, reload["timestamp"]), "+00:00"), string(reload["timestamp"]))
		st := okObject(t, e.do(t, http.MethodGet, pathStatus, admin))
		last, next := str(t, st["last_run"]), str(t, st["next_run"])
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$`, last)
		lt, err := time.Parse(time.RFC3339, last)
		require.NoError(t, err)
		nt, err := time.Parse(time.RFC3339, next)
		require.NoError(t, err)
		assert.Equal(t, lt.Add(6*time.Hour), nt, "next_run = last_run + interval")
		assert.JSONEq(t, string(st["next_run"]), string(st["next_scheduled_run"]))
	})

	t.Run("status with no worker answering comes from KV and says so", func(t *testing.T) {
		require.NoError(t, e.stack.Service.Stop())
		r := e.do(t, http.MethodGet, pathStatus, admin)
		obj := okObject(t, r)
		assert.True(t, boolean(t, obj["scheduled"]))
		assert.InDelta(t, 6.0, num(t, obj["interval_hours"]), 0)
		assert.Contains(t, str(t, obj["warning"]), "no betasync worker answered")
		r = e.do(t, http.MethodPost, pathReload, admin)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "commands still need a worker")
	})
}
