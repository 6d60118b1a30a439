package httpapi

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// AuthLimits bounds failed authentication. Its zero value uses the defaults.
//
// Wrong keys are counted per client address in a token bucket: a client may
// fail FailureBurst times in a row, then once per FailureEvery. Past that its
// requests are answered 429 with Retry-After, without the key being looked
// at: a throttled client cannot tell a right guess from a wrong one. A
// missing key is not a guess and is not counted.
//
// Valid keys are never slowed, and a success does not refill the bucket (a
// viewer key must not buy more guesses at the admin key). A client that is
// throttled may still use a key that it has used successfully before (up to
// 4 keys per client are remembered, as sha256 sums): an attacker behind the
// same NAT or proxy as an operator cannot lock that operator out, and cannot
// use the exception, since it needs a valid key to begin with. A key that
// has not succeeded from that address gets 429 like any guess until the
// bucket refills.
//
// Failed logins are logged at WARN with the client's address, never with
// the key, at most LogBurst lines per LogEvery; the lines dropped are
// counted in one summary line when the next interval begins.
type AuthLimits struct {
	FailureBurst int           // failures allowed in a row; 10 when 0
	FailureEvery time.Duration // one more failure allowed per; 6s when 0
	// MaxClients bounds the clients tracked; past it the least recently seen
	// is forgotten. 10,000 when 0.
	MaxClients int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client. A request from any other address is keyed by its own
	// address, and X-Forwarded-For is ignored. Empty: trust none.
	TrustedProxies []netip.Prefix
	LogBurst       int              // failed-login lines per LogEvery; 20 when 0
	LogEvery       time.Duration    // 1m when 0
	Now            func() time.Time // the clock; time.Now when nil
}

func (l AuthLimits) withDefaults() AuthLimits {
	if l.FailureBurst <= 0 {
		l.FailureBurst = 10
	}
	if l.FailureEvery <= 0 {
		l.FailureEvery = 6 * time.Second
	}
	if l.MaxClients <= 0 {
		l.MaxClients = 10_000
	}
	if l.LogBurst <= 0 {
		l.LogBurst = 20
	}
	if l.LogEvery <= 0 {
		l.LogEvery = time.Minute
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	return l
}

// throttle holds a failure bucket per client, least recently seen last.
type throttle struct {
	burst float64
	every time.Duration
	max   int

	mu      sync.Mutex
	clients map[string]*list.Element // of *client
	lru     *list.List
}

type client struct {
	addr   string
	tokens float64   // failures still allowed now
	at     time.Time // when tokens was computed
}

func newThrottle(l AuthLimits) *throttle {
	return &throttle{
		burst:   float64(l.FailureBurst),
		every:   l.FailureEvery,
		max:     l.MaxClients,
		clients: make(map[string]*list.Element),
		lru:     list.New(),
	}
}

// get returns addr's client, refilled to now, creating it (and forgetting
// the least recently seen one when full). The caller holds mu.
func (t *throttle) get(addr string, now time.Time) *client {
	if e, ok := t.clients[addr]; ok {
		t.lru.MoveToFront(e)
		c, _ := e.Value.(*client) // the list holds only *client
		if d := now.Sub(c.at); d > 0 {
			c.tokens = math.Min(t.burst, c.tokens+float64(d)/float64(t.every))
			c.at = now
		}
		return c
	}
	if t.lru.Len() >= t.max {
		old := t.lru.Back()
		t.lru.Remove(old)
		gone, _ := old.Value.(*client)
		delete(t.clients, gone.addr)
	}
	c := &client{addr: addr, tokens: t.burst, at: now}
	t.clients[addr] = t.lru.PushFront(c)
	return c
}

// attempt decides on a key from addr, in one step so that concurrent
// guesses cannot all pass one check. A valid key always passes: throttling
// slows guessing, it must not slow anyone who has a key (an attacker behind
// the same proxy or NAT could otherwise lock every operator out). A wrong
// key is counted; once addr has no tokens left, it returns how long addr
// must wait, and the key is not checked further.
func (t *throttle) attempt(addr string, valid bool, now time.Time) time.Duration {
	if valid {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.get(addr, now)
	if c.tokens < 1 {
		return time.Duration((1 - c.tokens) * float64(t.every))
	}
	c.tokens = math.Max(0, c.tokens-1)
	return 0
}

// clientAddr returns the address that r is throttled and logged by: the
// host of r.RemoteAddr or, when that is a trusted proxy, the rightmost
// address in X-Forwarded-For that is not one. IPv6 clients are grouped by
// their /64, which one host usually holds whole.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host // not an IP (a unix socket, a test): as it is
	}
	addr = addr.Unmap().WithZone("")
	if isTrusted(addr, trusted) {
		hops := r.Header.Values("X-Forwarded-For")
		// Right to left: the nearest hop first; the first one that is not
		// a trusted proxy is the client. Anything left of it may be forged.
	walk:
		for _, line := range slices.Backward(hops) {
			for _, hop := range slices.Backward(strings.Split(line, ",")) {
				a, err := netip.ParseAddr(strings.TrimSpace(hop))
				if err != nil {
					break walk // garbage: stop at the last address we trust
				}
				addr = a.Unmap().WithZone("")
				if !isTrusted(addr, trusted) {
					break walk
				}
			}
		}
	}
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
