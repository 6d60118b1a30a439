package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/testbed"
)

// hardened serves the admin API as the daemon does, with
// httpapi.NewHTTPServer on a real listener, and returns its address.
// cfg.Commands and cfg.Keys default to a testbed.Commands and the test
// keyring: these tests are about HTTP, and no command may run for a
// rejected request.
func hardened(t *testing.T, cfg httpapi.Config) (string, *testbed.Commands) {
	t.Helper()
	cmds := &testbed.Commands{}
	if cfg.Commands == nil {
		cfg.Commands = cmds
	}
	if cfg.Keys == nil {
		cfg.Keys = keyring(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httpapi.NewHTTPServer(httpapi.NewServer(cfg), 5*time.Second, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String(), cmds
}

// rawRequest is an HTTP/1.1 request written by hand, so that a test can
// send what a Go client would not (a trickled body, an encoded path as is).
func rawRequest(method, target string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: betasync\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// exchange sends request on a new connection and reads the answer. The
// write runs beside the read, so an answer the server sends before it has
// read the whole request (a 431) is still read.
func exchange(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.NoError(t, conn.SetDeadline(time.Now().Add(waitFor)))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = io.WriteString(conn, request) // fails once the server hangs up on a 431
	}()
	defer func() {
		_ = conn.Close()
		<-wrote
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// Clients that send the headers and then trickle the body, with no key, are
// answered at once and their connections closed: nothing reads a body
// before the key is checked, and a reply to an unread body does not wait
// for it. The goroutines go back to where they were.
func TestSlowBodiesAreAnsweredAndClosed(t *testing.T) {
	addr, cmds := hardened(t, httpapi.Config{})
	routes := []struct {
		method, target string
		want           int
	}{
		{http.MethodPost, pathReload, http.StatusUnauthorized},
		{http.MethodPost, pathSchedule + "?hours=24", http.StatusUnauthorized},
		{http.MethodDelete, pathSchedule, http.StatusUnauthorized},
		{http.MethodGet, pathStatus, http.StatusUnauthorized},
		{http.MethodGet, pathMapping, http.StatusUnauthorized},
		{http.MethodPut, pathSchedule, http.StatusMethodNotAllowed},
		{http.MethodPost, "/nope", http.StatusNotFound},
		{http.MethodPost, "/reload%2Fanthropic_beta_headers", http.StatusBadRequest},
		{http.MethodGet, "/healthz", http.StatusOK},
	}
	const conns = 300
	baseline := runtime.NumGoroutine()
	start := time.Now()

	// Every client sends its headers and one byte of a 1,000-byte body,
	// and sends no more.
	open := make([]net.Conn, conns)
	for i := range open {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.SetDeadline(time.Now().Add(waitFor))) // a hung test, not a measure
		rt := routes[i%len(routes)]
		_, err = io.WriteString(c, rawRequest(rt.method, rt.target, "Content-Length: 1000")+"x")
		require.NoError(t, err)
		open[i] = c
	}
	peak := runtime.NumGoroutine()

	for i, c := range open {
		rt := routes[i%len(routes)]
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, "%s %s", rt.method, rt.target)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		assert.Equal(t, rt.want, resp.StatusCode, "%s %s", rt.method, rt.target)
		assert.True(t, resp.Close, "%s %s: the reply must close the connection", rt.method, rt.target)
		// The server hangs up: the next read sees the end, not a timeout.
		_, err = br.ReadByte()
		assert.ErrorIs(t, err, io.EOF, "%s %s: the server must close the connection", rt.method, rt.target)
	}
	closed := time.Since(start)
	assert.Zero(t, cmds.Calls.Load(), "no command may run without a key")

	for _, c := range open {
		_ = c.Close()
	}
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= baseline+5 }, waitFor, tick,
		"goroutines: %d at the start, %d now", baseline, runtime.NumGoroutine())
	t.Logf("%d slow-body connections answered and closed by the server within %s; goroutines %d before, %d once all were sent, %d after",
		conns, closed.Round(time.Millisecond), baseline, peak, runtime.NumGoroutine())
}

// Headers are capped: 900 KB of headers, or a 1 MB path, get Go's small 431
// and the connection is closed; a path under the cap that matches nothing
// gets a 404 that echoes only the start of it.
func TestRequestSizeLimits(t *testing.T) {
	addr, _ := hardened(t, httpapi.Config{})

	t.Run("900 KB of headers", func(t *testing.T) {
		resp, body := exchange(t, addr, rawRequest(http.MethodGet, "/healthz", "X-Big: "+strings.Repeat("a", 900<<10)))
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
		assert.Less(t, len(body), 100)
	})
	t.Run("1 MB path", func(t *testing.T) {
		resp, body := exchange(t, addr, rawRequest(http.MethodGet, "/"+strings.Repeat("a", 1<<20)))
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
		assert.Less(t, len(body), 100)
	})
	t.Run("headers just under the cap", func(t *testing.T) {
		resp, _ := exchange(t, addr, rawRequest(http.MethodGet, "/healthz", "X-Big: "+strings.Repeat("a", httpapi.MaxHeaderBytes-1024)))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
	for _, tt := range []struct {
		name, method string
		want         int
	}{
		{"60 KB path, 404", http.MethodGet, http.StatusNotFound},
		{"60 KB path, 405", "BREW", http.StatusMethodNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			long := "/healthz/" + strings.Repeat("a", 60<<10)
			if tt.want == http.StatusMethodNotAllowed {
				long = "/healthz"
			}
			resp, body := exchange(t, addr, rawRequest(tt.method, long))
			assert.Equal(t, tt.want, resp.StatusCode)
			assert.Less(t, len(body), 512, "the answer must not echo the request: %d bytes", len(body))
			assert.Contains(t, body, "/healthz")
		})
	}
	t.Run("long method, 404", func(t *testing.T) {
		resp, body := exchange(t, addr, rawRequest(strings.Repeat("M", 30<<10), "/nope"))
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Less(t, len(body), 512)
	})
}

// The router matches the decoded path and cleans the rest, so an encoded
// separator, a dot segment or a double slash would reach an endpoint that a
// reverse proxy's rule did not see. All are refused with 400, even with a
// valid key, and no command runs.
func TestAmbiguousPathsAreRejected(t *testing.T) {
	addr, cmds := hardened(t, httpapi.Config{})
	key := "Authorization: Bearer " + masterKey
	for _, tt := range []struct{ method, target string }{
		{http.MethodPost, "/reload%2Fanthropic_beta_headers"},
		{http.MethodPost, "/reload%2fanthropic_beta_headers"},
		{http.MethodGet, "/schedule/anthropic_beta_headers_reload%2Fstatus"},
		{http.MethodGet, "/schedule%2Fanthropic_beta_headers_reload%2Fstatus"},
		{http.MethodPost, "/reload%5Canthropic_beta_headers"},
		{http.MethodPost, `/reload\anthropic_beta_headers`},
		{http.MethodPost, "/reload//anthropic_beta_headers"},
		{http.MethodPost, "//reload/anthropic_beta_headers"},
		{http.MethodPost, "/x/../reload/anthropic_beta_headers"},
		{http.MethodPost, "/x/%2e%2e/reload/anthropic_beta_headers"},
		{http.MethodPost, "/./reload/anthropic_beta_headers"},
		{http.MethodGet, "/healthz/."},
	} {
		t.Run(tt.target, func(t *testing.T) {
			resp, body := exchange(t, addr, rawRequest(tt.method, tt.target, key))
			r := reply{status: resp.StatusCode, header: resp.Header, body: []byte(body)}
			e := assertError(t, r, http.StatusBadRequest)
			assert.Equal(t, "invalid", e.Type)
			assert.NotContains(t, body, "anthropic_beta_headers", "the path is not echoed")
			assert.Empty(t, resp.Header.Get("Location"), "no redirect to the cleaned path")
		})
	}
	assert.Zero(t, cmds.Calls.Load())

	t.Run("canonical paths still work", func(t *testing.T) {
		resp, body := exchange(t, addr, rawRequest(http.MethodPost, pathReload, key))
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
		resp, _ = exchange(t, addr, rawRequest(http.MethodGet, pathStatus+"?x=%2F", key))
		assert.Equal(t, http.StatusOK, resp.StatusCode, "an encoded slash in the query is fine")
		resp, _ = exchange(t, addr, rawRequest(http.MethodGet, "/healthz/"))
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a trailing slash is another path, not a cleaned one")
	})
}

// Requests without a body keep their connection: the limits cost
// keep-alive only to a reply that left a body unread.
func TestKeepAliveSurvivesLimits(t *testing.T) {
	addr, _ := hardened(t, httpapi.Config{})
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	do := func(method, path string, body io.Reader, key string) (*http.Response, bool) {
		t.Helper()
		reused := false
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		})
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp, reused
	}
	for i := range 5 {
		resp, reused := do(http.MethodGet, pathStatus, nil, viewerKey)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.False(t, resp.Close)
		assert.Equal(t, i > 0, reused, "request %d", i)
	}
	resp, reused := do(http.MethodPost, pathReload, strings.NewReader(`{}`), "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.True(t, reused)
	assert.True(t, resp.Close, "an unread body closes the connection")
	_, reused = do(http.MethodGet, pathStatus, nil, viewerKey)
	assert.False(t, reused, "a new connection after the close")
}
