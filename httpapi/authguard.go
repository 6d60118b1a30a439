package httpapi

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/betasync/betasync/internal/ratelog"
)

// authGuard returns the middleware of every route that needs a key: s.auth
// (which answers 401 and 403) behind the failed-login throttle and log of
// s.cfg.AuthLimits. One guard, one throttle, for all routes.
func (s *server) authGuard() func(role string, next http.Handler) http.Handler {
	lim := s.cfg.AuthLimits.withDefaults()
	g := &guard{
		keys: s.cfg.Keys,
		lim:  lim,
		th:   newThrottle(lim),
		log:  &loginLog{log: s.log, limit: &ratelog.Limiter{Burst: lim.LogBurst, Every: lim.LogEvery}, now: lim.Now},
	}
	return func(role string, next http.Handler) http.Handler {
		return g.wrap(s.auth(role, next))
	}
}

type guard struct {
	keys *Keyring
	lim  AuthLimits
	th   *throttle
	log  *loginLog
}

// wrap throttles and logs failed logins before next (s.auth) decides.
// Nothing here reads the body: the key is checked before any handler does.
func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r, g.lim.TrustedProxies)
		tok, why := token(r)
		if tok == "" {
			// Not a guess: logged, not counted. s.auth answers 401.
			g.log.failed(r, addr, why)
			next.ServeHTTP(w, r)
			return
		}
		sum := sha256.Sum256([]byte(tok))
		_, valid := g.keys.match(sum)
		if wait := g.th.attempt(addr, valid, g.lim.Now()); wait > 0 {
			secs := max(1, int((wait+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			g.log.failed(r, addr, "throttled after too many wrong keys")
			msg := fmt.Sprintf("too many wrong API keys from %s: retry in %d s", addr, secs)
			if isLiteLLMPath(r.URL.Path) {
				writeLiteLLMError(w, r, statusType(http.StatusTooManyRequests), http.StatusTooManyRequests, msg, "")
				return
			}
			writeStatus(w, http.StatusTooManyRequests, statusType(http.StatusTooManyRequests), msg)
			return
		}
		if !valid {
			g.log.failed(r, addr, "invalid API key")
		}
		next.ServeHTTP(w, r)
	})
}

// loginLog writes failed logins at WARN, at most burst lines per interval
// (per server, so per process), so that a flood cannot fill the disk. The
// lines it drops are counted, and the count is written in one line when
// the next interval begins (with the next failed login: there is no timer
// to own). The key is never logged.
type loginLog struct {
	log   *slog.Logger
	limit *ratelog.Limiter
	now   func() time.Time
}

func (l *loginLog) failed(r *http.Request, addr, reason string) {
	v := l.limit.Allow(l.now())
	ctx := r.Context()
	if v.Dropped > 0 {
		l.log.WarnContext(ctx, "failed logins not logged", "count", v.Dropped,
			"since", v.Since.UTC().Format(time.RFC3339), "limit", fmt.Sprintf("%d per %s", l.limit.Burst, l.limit.Every))
	}
	if !v.OK {
		return
	}
	args := []any{"client", addr, "remote_addr", r.RemoteAddr, "method", clip(r.Method, 16),
		"path", clip(r.URL.Path, clipLen), "reason", reason}
	if v.Last {
		args = append(args, "note", "limit reached: further failed logins in this interval are counted, not logged")
	}
	l.log.WarnContext(ctx, "failed login", args...)
}
