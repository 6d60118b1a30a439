package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"IPv4", "192.0.2.1:5555", nil, "192.0.2.1"},
		{"IPv4 mapped in IPv6", "[::ffff:192.0.2.1]:5555", nil, "192.0.2.1"},
		{"IPv6 by /64", "[2001:db8:1:2:3:4:5:6]:5555", nil, "2001:db8:1:2::/64"},
		{"IPv6 with a zone", "[fe80::1%eth0]:5555", nil, "fe80::/64"},
		{"untrusted peer ignores X-Forwarded-For", "192.0.2.1:5555", []string{"198.51.100.1"}, "192.0.2.1"},
		{"trusted proxy", "10.0.0.1:5555", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted IPv6 proxy", "[::1]:5555", []string{"198.51.100.1"}, "198.51.100.1"},
		{"rightmost untrusted hop", "10.0.0.1:5555", []string{"203.0.113.9, 198.51.100.1, 10.2.2.2"}, "198.51.100.1"},
		{"repeated header lines", "10.0.0.1:5555", []string{"203.0.113.9", "198.51.100.1"}, "198.51.100.1"},
		{"garbage stops the walk", "10.0.0.1:5555", []string{"198.51.100.1, not-an-ip"}, "10.0.0.1"},
		{"only proxies", "10.0.0.1:5555", []string{"10.3.3.3"}, "10.3.3.3"},
		{"no header", "10.0.0.1:5555", nil, "10.0.0.1"},
		{"not an IP", "pipe", nil, "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tt.want, clientAddr(r, trusted))
		})
	}
}

// The throttle tracks at most MaxClients addresses, forgetting the least
// recently seen; valid keys never count and are never throttled.
func TestThrottleMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(AuthLimits{FailureBurst: 1, MaxClients: 100}.withDefaults())
	for i := range 1000 {
		th.attempt(fmt.Sprintf("198.51.%d.%d", i/256, i%256), false, now)
	}
	assert.Len(t, th.clients, 100)
	assert.Equal(t, 100, th.lru.Len())
	assert.Zero(t, th.attempt("198.51.0.0", false, now), "the oldest was forgotten: a full bucket")
	assert.Positive(t, th.attempt("198.51.3.231", false, now), "the newest is throttled")
	assert.Zero(t, th.attempt("198.51.3.231", true, now), "a valid key from a throttled address passes")
}
