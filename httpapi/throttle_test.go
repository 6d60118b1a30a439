package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/syncbuf"
)

// clock is a settable time for the throttle and the log limit.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// caller sends requests to one server over one keep-alive client.
type caller struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newCaller(t *testing.T, addr string) *caller {
	t.Helper()
	c := &caller{t: t, base: "http://" + addr, client: &http.Client{Transport: &http.Transport{}}}
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// get asks for the schedule status (a viewer endpoint) with the headers
// given as name, value pairs. It is safe to call from several goroutines;
// failures are asserted, not required.
func (c *caller) get(headers ...string) reply {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), http.MethodGet, c.base+pathStatus, nil)
	if !assert.NoError(c.t, err) {
		return reply{}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := c.client.Do(req)
	if !assert.NoError(c.t, err) {
		return reply{}
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	assert.NoError(c.t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: body, path: req.URL.Path}
}

func withKey(key string, more ...string) []string {
	return append([]string{"Authorization", "Bearer " + key}, more...)
}

// Wrong keys from one address are answered 401 up to the burst, then 429
// with Retry-After; valid keys are never throttled; missing keys are not
// counted; the bucket refills with time.
func TestFailedLoginThrottle(t *testing.T) {
	clk := newClock()
	addr, _ := hardened(t, httpapi.Config{AuthLimits: httpapi.AuthLimits{
		FailureBurst: 10, FailureEvery: 6 * time.Second, Now: clk.Now,
	}})
	c := newCaller(t, addr)
	status := func(headers ...string) int { return c.get(headers...).status }

	require.Equal(t, http.StatusOK, status(withKey(masterKey)...), "the operator works before the attack")
	for i := range 10 {
		require.Equal(t, http.StatusUnauthorized, status(withKey(fmt.Sprintf("sk-wrong-%d", i))...), "guess %d", i)
	}

	r := c.get(withKey("sk-wrong-10")...)
	assert.Contains(t, string(r.body), `"detail"`, "LiteLLM's route answers in LiteLLM's error shape, 429 included")
	e := assertError(t, r, http.StatusTooManyRequests)
	assert.Equal(t, "rate_limited", e.Type)
	assert.Equal(t, "6", r.header.Get("Retry-After"))
	assert.Contains(t, e.Message, "retry in 6 s")

	t.Run("valid keys are never slowed, even one not used from here before", func(t *testing.T) {
		// An attacker behind the same proxy or NAT must not lock the
		// operators out: throttling slows guessing, not key holders.
		assert.Equal(t, http.StatusOK, status(withKey(viewerKey)...))
		assert.Equal(t, http.StatusOK, status(withKey(masterKey)...))
		assert.Equal(t, http.StatusOK, status("x-litellm-api-key", masterKey))
		assert.Equal(t, http.StatusTooManyRequests, c.get(withKey("sk-still-guessing")...).status, "guesses stay throttled")
	})
	t.Run("a missing key is 401, not counted", func(t *testing.T) {
		for range 20 {
			assert.Equal(t, http.StatusUnauthorized, status())
		}
	})
	t.Run("the bucket refills", func(t *testing.T) {
		clk.Add(3 * time.Second)
		r := c.get(withKey("sk-wrong")...)
		assert.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, "3", r.header.Get("Retry-After"))
		clk.Add(3 * time.Second)
		assert.Equal(t, http.StatusUnauthorized, status(withKey("sk-wrong")...), "one more guess after 6 s")
		assert.Equal(t, http.StatusTooManyRequests, status(withKey("sk-wrong")...))
		clk.Add(time.Minute)
		for i := range 10 {
			assert.Equal(t, http.StatusUnauthorized, status(withKey("sk-wrong")...), "guess %d after a minute", i)
		}
		assert.Equal(t, http.StatusTooManyRequests, status(withKey("sk-wrong")...))
		assert.Equal(t, http.StatusOK, status(withKey(masterKey)...))
	})
}

// Behind a trusted proxy, X-Forwarded-For names the client: clients are
// throttled apart, an IPv6 client by its /64, and an address prepended by
// the client does not escape. From any other peer the header is ignored.
func TestThrottlePerClient(t *testing.T) {
	clk := newClock()
	addr, _ := hardened(t, httpapi.Config{AuthLimits: httpapi.AuthLimits{
		FailureBurst: 3, Now: clk.Now,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
	}})
	c := newCaller(t, addr)
	from := func(xff, key string) int {
		return c.get(withKey(key, "X-Forwarded-For", xff)...).status
	}
	for i := range 3 {
		require.Equal(t, http.StatusUnauthorized, from("203.0.113.1", "sk-wrong"), "guess %d", i)
	}
	tests := []struct {
		name, xff, key string
		want           int
	}{
		{"the attacker is throttled", "203.0.113.1", "sk-wrong", http.StatusTooManyRequests},
		{"through a second trusted proxy", "203.0.113.1, 10.1.2.3", "sk-wrong", http.StatusTooManyRequests},
		{"a forged address on the left does not escape", "198.51.100.7, 203.0.113.1", "sk-wrong", http.StatusTooManyRequests},
		{"another client may fail", "203.0.113.2", "sk-wrong", http.StatusUnauthorized},
		{"another client's valid key", "203.0.113.3", viewerKey, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, from(tt.xff, tt.key))
		})
	}
	t.Run("IPv6 by /64", func(t *testing.T) {
		for range 3 {
			require.Equal(t, http.StatusUnauthorized, from("2001:db8::1", "sk-wrong"))
		}
		assert.Equal(t, http.StatusTooManyRequests, from("2001:db8::ffff", "sk-wrong"), "same /64")
		assert.Equal(t, http.StatusUnauthorized, from("2001:db8:0:1::1", "sk-wrong"), "another /64")
	})

	t.Run("untrusted peer: X-Forwarded-For is ignored", func(t *testing.T) {
		addr, _ := hardened(t, httpapi.Config{AuthLimits: httpapi.AuthLimits{FailureBurst: 3, Now: clk.Now}})
		c := newCaller(t, addr)
		for i := range 3 {
			assert.Equal(t, http.StatusUnauthorized, c.get(withKey("sk-wrong", "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))...).status)
		}
		assert.Equal(t, http.StatusTooManyRequests, c.get(withKey("sk-wrong", "X-Forwarded-For", "198.51.100.99")...).status)
	})
}

// A flood of 3,000 wrong keys writes a bounded number of log lines (the
// per-request access lines of 401 and 429 are debug), at WARN, with the
// client's address and never the key; the dropped lines are counted in one
// line when the next interval begins.
func TestFailedLoginLogIsBounded(t *testing.T) {
	clk := newClock()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	addr, _ := hardened(t, httpapi.Config{Logger: log, AuthLimits: httpapi.AuthLimits{
		LogBurst: 20, LogEvery: time.Minute, Now: clk.Now,
	}})
	c := newCaller(t, addr)

	const flood, workers = 3000, 4
	const secret = "Zq7secretZq7"
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < flood; i += workers {
				r := c.get(withKey(fmt.Sprintf("sk-%s-%d", secret, i))...)
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusUnauthorized: 10, http.StatusTooManyRequests: flood - 10}, statuses)

	lines := logLines(t, logs.String())
	t.Logf("%d wrong keys: %d log lines", flood, len(lines))
	assert.Len(t, lines, 20)
	assert.NotContains(t, logs.String(), secret, "a key was logged")
	for _, l := range lines {
		assert.Equal(t, "WARN", l["level"])
		assert.Equal(t, "failed login", l["msg"])
		assert.Equal(t, "127.0.0.1", l["client"])
		assert.Contains(t, l["remote_addr"], "127.0.0.1:")
		assert.Equal(t, pathStatus, l["path"])
	}
	assert.Contains(t, lines[len(lines)-1], "note", "the last line says the rest is counted")

	// The next interval opens with the count of what was dropped.
	clk.Add(time.Minute)
	assert.Equal(t, http.StatusUnauthorized, c.get(withKey("sk-wrong")...).status)
	lines = logLines(t, logs.String())
	require.Len(t, lines, 22)
	assert.Equal(t, "failed logins not logged", lines[20]["msg"])
	assert.InDelta(t, flood-20, lines[20]["count"], 0)
	assert.Equal(t, "failed login", lines[21]["msg"])
	assert.NotContains(t, logs.String(), secret)
}

func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.Lines(s) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "%s", l)
		lines = append(lines, m)
	}
	return lines
}
