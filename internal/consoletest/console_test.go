package consoletest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

// waitFor bounds every wait for the page or the bus: a deadline for a hung
// test, not a measurement. The page refreshes its live views every 3 s.
const waitFor = 15 * time.Second

const (
	adminKey  = "sk-console-admin-0123456789"
	viewerKey = "sk-console-viewer-0123456789"
)

// chromium finds the browser, or skips (fails under CI).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BETASYNC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("CI is set and no chromium binary was found: install Debian's chromium package (.ci/run does) or set BETASYNC_CHROMIUM")
	}
	t.Skip("no chromium binary found (apt-get install chromium, or set BETASYNC_CHROMIUM): skipping the browser tests")
	return ""
}

// artifacts is where screenshots go.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BETASYNC_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// stack is the system under test.
type stack struct {
	*testbed.Stack
	api *httptest.Server
}

// newStack starts NATS, a worker whose upstream serves the embedded default
// (so version 1 is the embedded default), the API replica's own subscriber
// (pod "api") and the API on httptest.
func newStack(t *testing.T) *stack {
	t.Helper()
	var fleetNC atomic.Pointer[nats.Conn] // the worker's own connection, known once the stack is up
	const window = 300 * time.Millisecond
	s := testbed.NewStack(t, testbed.Serve(betasync.Default().JSON()), worker.Config{
		ReplicaID:     "replica-1",
		CheckInterval: time.Hour, // the schedule never ticks during the test
		FleetWindow:   window,
	}, worker.Deps{Fleet: func(ctx context.Context) ([]betasync.PodStatus, error) {
		return publisher.Fleet(ctx, fleetNC.Load(), window)
	}})
	fleetNC.Store(s.Node.NC)
	sub, err := subscriber.New(s.Node.NC, subscriber.WithPodID("api"))
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	testbed.Run(t, s.Worker)
	var st betasync.ScheduleStatus
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		st, err = s.Client.Status(ctx)
		return err == nil && st.LastReload != nil && st.LockHolder == "replica-1"
	}, waitFor, 10*time.Millisecond, "the worker's start-up reload and lease")
	require.Eventually(t, func() bool { return sub.Current().Version == st.ConfigVersion }, waitFor, 10*time.Millisecond)
	require.Equal(t, uint64(1), st.ConfigVersion, "version 1 is the embedded default")

	keys, err := httpapi.NewKeyring("", []httpapi.Key{
		{Name: "ops", SHA256: sha256Hex(adminKey), Role: httpapi.RoleAdmin},
		{Name: "dashboard", SHA256: sha256Hex(viewerKey), Role: httpapi.RoleViewer},
	})
	require.NoError(t, err)
	api := httptest.NewServer(httpapi.NewServer(httpapi.Config{
		Commands:       s.Client,
		Mapping:        sub,
		Keys:           keys,
		CommandTimeout: 10 * time.Second,
	}))
	t.Cleanup(api.Close)
	return &stack{Stack: s, api: api}
}

// browser starts one headless Chromium for the test and returns a context
// for its first tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "starting %s", path)
	return ctx
}

// run runs steps in tab with a deadline.
func run(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, pageState(tab))
	}
}

// pageState describes the page for a failure message.
func pageState(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + "\nstatus: " +
		(document.querySelector("#status") || {}).textContent + "\nsign-in error: " +
		(document.querySelector("#signin-error") || {}).textContent + "\n" + document.body.innerText.slice(0, 400)`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return state
}

// get runs one action that answers a value, with a deadline.
func get[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err, what)
	return v
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	return get(t, tab, expr, chromedp.Evaluate[T](expr))
}

// until waits for a JavaScript expression to be true.
func until(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(waitFor), chromedp.WithPollingInterval(50*time.Millisecond))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := poll(ctx, t)
		if err != nil {
			return v, fmt.Errorf("waiting for %s: %w", expr, err)
		}
		return v, nil
	}
}

// textIs is a JavaScript expression: the element's text equals want.
func textIs(sel, want string) string {
	return fmt.Sprintf("(() => { const e = document.querySelector(%s); return !!e && e.textContent.trim() === %s })()", js(sel), js(want))
}

// has is a JavaScript expression: the element exists and its text contains want.
func has(sel, want string) string {
	return fmt.Sprintf("(document.querySelector(%s)?.textContent ?? \"\").includes(%s)", js(sel), js(want))
}

// cell is the selector of the matrix cell of beta and provider.
func cell(beta, provider string) string {
	return fmt.Sprintf(`#matrix-table tr[data-beta=%q] td[data-provider=%q]`, beta, provider)
}

func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// shoot saves a screenshot of sel (or the viewport when sel is "").
func shoot(t *testing.T, tab context.Context, dir, name, sel string) {
	t.Helper()
	action := chromedp.CaptureScreenshot()
	if sel != "" {
		action = chromedp.Screenshot(chromedp.CSS(sel))
	}
	buf := get(t, tab, "screenshot "+name, action)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), buf, 0o644))
}

func signIn(t *testing.T, tab context.Context, url, key, who string) {
	t.Helper()
	run(t, tab, "sign in as "+who,
		chromedp.Navigate(url+"/ui"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), key),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("console")),
		until(has("#who", who)),
		until(`document.querySelectorAll("#matrix-table tbody tr").length > 10`),
	)
	loc := get(t, tab, "location", chromedp.Location())
	typed := get(t, tab, "the key field", chromedp.Value(chromedp.ID("key")))
	assert.NotContains(t, loc, key, "the key is never in the URL")
	assert.Empty(t, typed, "the key is cleared from the form")
}

// withoutToolSearch is the embedded default with advanced-tool-use mapped
// to null on Bedrock.
func withoutToolSearch(t *testing.T) []byte {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(betasync.Default().JSON(), &doc))
	bedrock, ok := doc["bedrock"].(map[string]any)
	require.True(t, ok)
	bedrock["advanced-tool-use-2025-11-20"] = nil
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	return b
}

// fakePod answers the fleet query as a pod stuck at version.
func fakePod(t *testing.T, nc *nats.Conn, id string, version uint64) {
	t.Helper()
	body, err := json.Marshal(betasync.PodStatus{Pod: id, Version: version, Source: betasync.SourceEmbedded, AppliedAt: time.Now().UTC()})
	require.NoError(t, err)
	sub, err := nc.Subscribe(publisher.SubjectPodStatus, func(m *nats.Msg) { _ = m.Respond(body) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// TestConsole walks the console as an operator does, in one browser.
func TestConsole(t *testing.T) {
	start := time.Now()
	tab := browser(t) // first: without chromium, skip before starting anything
	s := newStack(t)
	dir := artifacts(t)
	t.Logf("screenshots in %s", dir)

	signIn(t, tab, s.api.URL, adminKey, "ops (admin)")

	t.Run("the matrix shows the embedded default", func(t *testing.T) {
		run(t, tab, "matrix",
			until(textIs("#cur-version", "1")),
			until(textIs("#cur-source", "embedded")),
			until(textIs("#cur-hash", betasync.Default().Hash())),
			until(textIs(cell("advanced-tool-use-2025-11-20", "bedrock"), "→ tool-search-tool-2025-10-19")),
			until(textIs(cell("advanced-tool-use-2025-11-20", "anthropic"), "✓ forwarded")),
			until(textIs(cell("advanced-tool-use-2025-11-20", "bedrock_converse"), "✗ unsupported")),
		)
		header := eval[[]string](t, tab, `Array.from(document.querySelectorAll("#matrix-table thead th[scope=col]")).map(e => e.textContent)`)
		assert.Equal(t, append([]string{"beta"}, betasync.Default().Providers()...), header)
		shoot(t, tab, dir, "console.png", "")

		// The filter box hides the rows that do not match.
		run(t, tab, "filter", chromedp.SendKeys(chromedp.ID("matrix-filter"), "context-1m"))
		shown := eval[int](t, tab, `document.querySelectorAll("#matrix-table tbody tr:not([hidden])").length`)
		matching := eval[int](t, tab, `document.querySelectorAll("#matrix-table tbody tr[data-beta*='context-1m']").length`)
		eval[bool](t, tab, `(() => { const f = document.querySelector("#matrix-filter"); f.value = ""; f.dispatchEvent(new Event("input")); return true })()`)
		assert.Positive(t, shown)
		assert.Equal(t, matching, shown)
	})

	t.Run("try a header", func(t *testing.T) {
		run(t, tab, "try",
			chromedp.SetValue(chromedp.ID("try-value"), "context-1m-2025-08-07, advanced-tool-use-2025-11-20,interleaved-thinking-2025-05-14"),
			chromedp.SetValue(chromedp.ID("try-provider"), "bedrock"),
			chromedp.Click(chromedp.CSS(`#try-form button[type=submit]`)),
			until(textIs("#try-sent", "Sent to bedrock: anthropic-beta: context-1m-2025-08-07,tool-search-tool-2025-10-19")),
		)
		shoot(t, tab, dir, "try.png", "#try")
	})

	t.Run("an override changes the cell", func(t *testing.T) {
		c := cell("context-1m-2025-08-07", "bedrock")
		run(t, tab, "override",
			until(textIs(c, "✓ forwarded")),
			chromedp.SetValue(chromedp.ID("ov-provider"), "bedrock"),
			chromedp.SendKeys(chromedp.ID("ov-beta"), "context-1m-2025-08-07"),
			chromedp.Click(chromedp.ID("ov-drop")),
			chromedp.Click(chromedp.CSS(`#override-form button[type=submit]`)),
			until(textIs("#cur-version", "2")),
			until(textIs(c, "★ ✗ unsupported")),
			until(`!!document.querySelector(`+js(c)+`)?.classList.contains("overridden")`),
			until(has("#overrides-table tbody", "context-1m-2025-08-07")),
		)
		shoot(t, tab, dir, "overrides.png", "#overrides")
	})

	t.Run("a rollback changes the version", func(t *testing.T) {
		// A reload brings a document that drops advanced-tool-use on
		// Bedrock (version 3); rolling back to version 1 stores the
		// embedded default again, under today's override, as version 4.
		s.Upstream.Set(testbed.Serve(withoutToolSearch(t)))
		c := cell("advanced-tool-use-2025-11-20", "bedrock")
		run(t, tab, "reload",
			chromedp.Click(chromedp.ID("reload-now")),
			until(textIs("#cur-version", "3")),
			until(textIs("#cur-source", betasync.SourceRemote)),
			until(textIs(c, "✗ unsupported")),
			until(`!!document.querySelector('#history-table tr[data-version="3"] ul.changes')`),
			chromedp.Click(chromedp.CSS(`#history-table tr[data-version="1"] button.rollback-ask`)),
			chromedp.WaitVisible(chromedp.CSS(`#history-table tr[data-version="1"] button.rollback-confirm`)),
		)
		shoot(t, tab, dir, "history.png", "#history")
		run(t, tab, "rollback",
			chromedp.Click(chromedp.CSS(`#history-table tr[data-version="1"] button.rollback-confirm`)),
			until(textIs("#cur-version", "4")),
			until(textIs("#cur-source", betasync.SourceRollback)),
			until(textIs(c, "→ tool-search-tool-2025-10-19")),
			until(textIs(cell("context-1m-2025-08-07", "bedrock"), "★ ✗ unsupported")),
			until(has(`#history-table tr[data-version="4"]`, "ops")),
		)
	})

	t.Run("the fleet view shows a second pod and a laggard", func(t *testing.T) {
		run(t, tab, "one pod", until(`!!document.querySelector('#fleet-table tr[data-pod="api"]')`))
		pod, err := subscriber.New(s.Server.Connect(t), subscriber.WithPodID("pod-b"))
		require.NoError(t, err)
		t.Cleanup(pod.Close)
		fakePod(t, s.Server.Connect(t), "pod-stale", 1)
		run(t, tab, "two pods and a laggard",
			until(`document.querySelectorAll('#fleet-table tbody tr').length === 3`),
			until(has(`#fleet-table tr[data-pod="pod-b"]`, "v4")),
			until(`!!document.querySelector('#fleet-table tr[data-pod="pod-stale"]')?.classList.contains("lagging")`),
			until(has(`#fleet-table tr[data-pod="pod-stale"]`, "⚠ lagging")),
			until(has("#fleet-summary", "NOT converged")),
		)
		shoot(t, tab, dir, "fleet.png", "#fleet")
	})

	t.Run("the schedule", func(t *testing.T) {
		run(t, tab, "schedule",
			until(textIs("#sch-holder", "replica-1")),
			chromedp.SetValue(chromedp.ID("sch-hours"), "6"),
			chromedp.Click(chromedp.CSS(`#schedule-form button[type=submit]`)),
			until(textIs("#sch-scheduled", "yes")),
			until(textIs("#sch-interval", "6 h")),
		)
		shoot(t, tab, dir, "schedule.png", "#schedule")
		run(t, tab, "cancel", chromedp.Click(chromedp.ID("schedule-cancel")), until(textIs("#sch-scheduled", "no")))
	})

	t.Run("a viewer sees everything and has no write controls", func(t *testing.T) {
		viewer, cancel := chromedp.NewContext(tab) // a new tab: its own sessionStorage
		defer cancel()
		require.NoError(t, chromedp.Do(viewer), "opening a tab") // no deadline: it would close the tab
		run(t, viewer, "a wrong key is refused",
			chromedp.Navigate(s.api.URL+"/ui"),
			chromedp.WaitVisible(chromedp.ID("key")),
			chromedp.SendKeys(chromedp.ID("key"), "sk-wrong\n"), // Enter submits

			until(`(document.querySelector("#signin-error")?.textContent ?? "") !== ""`),
		)
		signIn(t, viewer, s.api.URL, viewerKey, "dashboard (viewer)")
		run(t, viewer, "everything shows",
			until(textIs("#cur-version", "4")),
			until(`document.querySelectorAll("#history-table tbody tr").length === 4`),
			until(has("#overrides-table tbody", "context-1m-2025-08-07")),
			until(`document.querySelectorAll("#fleet-table tbody tr").length >= 1`),
			until(textIs("#sch-holder", "replica-1")),
		)
		buttons := eval[[]string](t, viewer, `Array.from(document.querySelectorAll("button")).filter(b => b.offsetParent !== null).map(b => b.textContent.trim())`)
		adminShown := eval[int](t, viewer, `Array.from(document.querySelectorAll(".admin-only")).filter(e => !e.hidden).length`)
		assert.ElementsMatch(t, []string{"Sign out", "Show what is sent"}, buttons, "a viewer has no write controls")
		assert.Zero(t, adminShown)
		shoot(t, viewer, dir, "viewer.png", "")

		// Signing out forgets the key.
		run(t, viewer, "sign out",
			chromedp.Click(chromedp.ID("signout")),
			chromedp.WaitVisible(chromedp.ID("key")),
			until(`sessionStorage.length === 0`),
		)
	})

	t.Logf("browser walk took %s", time.Since(start).Round(100*time.Millisecond))
}
