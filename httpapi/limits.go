package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Limits of every server that NewHTTPServer builds.
const (
	// MaxHeaderBytes bounds the request line and headers together; Go's
	// server answers 431 beyond it (plus its own 4 KiB of slack).
	MaxHeaderBytes = 64 << 10
	// MaxBodyBytes bounds every request body; a handler that reads one sets
	// its own, smaller limit with decodeJSONBody.
	MaxBodyBytes = 2 << 20

	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds the whole request, headers and body. It does not
	// bound the handler: net/http clears the read deadline once the body is
	// read, so a long command is not cut off by it.
	readTimeout = 30 * time.Second
	idleTimeout = 2 * time.Minute
	// writeSlack is added to the handler's timeout to bound the response.
	writeSlack = 10 * time.Second
)

// NewHTTPServer returns the *http.Server that serves h with betasync's
// limits: a bounded time to send the headers (10 s) and the whole request
// (30 s), a bounded response time (handlerTimeout plus 10 s), idle
// connections closed after 2 minutes, headers capped at MaxHeaderBytes (431)
// and bodies at MaxBodyBytes (413). Requests whose path holds an encoded
// separator or would be cleaned into another path are answered 400. A reply
// sent before the body was read (a 401, a 404, ...) closes the connection
// instead of waiting for the rest of the body, so a client that trickles a
// body cannot hold a connection. Server errors go to log at WARN; a nil log
// uses the log package's default logger.
func NewHTTPServer(h http.Handler, handlerTimeout time.Duration, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           limitRequests(h),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      handlerTimeout + writeSlack,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}

// limitRequests rejects ambiguous paths, caps the body and closes the
// connection after a reply that left the body unread.
func limitRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			body := &trackedBody{ReadCloser: http.MaxBytesReader(w, r.Body, MaxBodyBytes)}
			r.Body = body
			w = &earlyReplyWriter{ResponseWriter: w, body: body}
		}
		if why := ambiguousPath(r); why != "" {
			writeStatus(w, http.StatusBadRequest, "invalid", why)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trackedBody remembers whether the handler read the body to its end.
type trackedBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof.Store(true)
	}
	return n, err
}

// earlyReplyWriter closes the connection when the handler answers before
// reading the whole body. Left to itself, net/http would first read (up to
// 256 KiB of) the rest of the body, to reuse the connection: a client that
// sends one byte every few seconds would get no answer and hold the
// connection until the read timeout. Instead the reply carries
// "Connection: close" and the read deadline is set to now, so the
// connection is closed as soon as the reply is out.
type earlyReplyWriter struct {
	http.ResponseWriter
	body        *trackedBody
	wroteHeader bool
}

func (w *earlyReplyWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= http.StatusOK {
		w.wroteHeader = true
		if !w.body.eof.Load() {
			w.Header().Set("Connection", "close")
			// Not every ResponseWriter has a connection (a recorder):
			// then there is nothing to close.
			_ = http.NewResponseController(w.ResponseWriter).SetReadDeadline(time.Now())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *earlyReplyWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *earlyReplyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ambiguousPath says why r's path is rejected, or "" when it is not. The
// router matches the decoded path, so "/reload%2Fanthropic_beta_headers"
// would reach "/reload/anthropic_beta_headers" although a reverse proxy in
// front saw another path; and it redirects paths it would clean
// ("//reload", "/x/../reload", also spelled "%2e%2e"). A path rule in a
// proxy can be bypassed by either, so both are refused. The message does
// not echo the path.
func ambiguousPath(r *http.Request) string {
	raw := strings.ToUpper(r.URL.EscapedPath())
	if strings.Contains(raw, "%2F") || strings.Contains(raw, "%5C") || strings.Contains(r.URL.Path, `\`) {
		return `the path holds an encoded "/" or a "\": send each path segment as it is`
	}
	if p := r.URL.Path; p != cleanPath(p) {
		return `the path is not canonical (an empty, "." or ".." segment): send the path as it is meant`
	}
	return ""
}

// cleanPath is the path gorilla/mux would redirect to: path.Clean, rooted,
// keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// decodeJSONBody decodes r's body, a single JSON value of at most limit
// bytes, into v; fields v does not have are rejected. On failure it has
// already answered (413 for a body over limit, 408 for a body that did not
// arrive in time, 400 for anything else, the message saying which) and
// returns the error; the handler just returns. The handler's key was
// checked before (auth runs first on every route), so only a known client
// can make the server read a body at all.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One value and nothing after it.
		_, terr := dec.Token()
		switch {
		case errors.Is(terr, io.EOF):
			return nil
		case terr == nil || isSyntaxError(terr):
			err = errTrailingData
		default:
			err = terr // the read failed: too large, too slow
		}
	}
	status, msg := bodyError(err, limit)
	writeStatus(w, status, statusType(status), msg)
	return fmt.Errorf("request body: %w", err)
}

var errTrailingData = errors.New("data after the JSON value")

func isSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}

// bodyError maps a body read or decode error to a status and a message
// that does not echo more than a clipped piece of the body.
func bodyError(err error, limit int64) (int, string) {
	var tooBig *http.MaxBytesError
	var netErr net.Error
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, "request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"
	case errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusRequestTimeout, "request body did not arrive in time"
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "request body is empty: want a JSON value"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "request body is not valid JSON: it ends too early"
	case errors.Is(err, errTrailingData):
		return http.StatusBadRequest, "request body is not valid JSON: data after the JSON value"
	case errors.As(err, &se):
		return http.StatusBadRequest, "request body is not valid JSON at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return http.StatusBadRequest, "request body: " + clip(te.Field, 64) + " must be a " + te.Type.String()
	}
	// DisallowUnknownFields: `json: unknown field "name"`.
	return http.StatusBadRequest, "request body: " + clip(strings.TrimPrefix(err.Error(), "json: "), 128)
}

// writeStatus answers with LiteLLM's error shape for a status that has no
// betasync error code (one that only HTTP has: 408, 413, 429, ...).
func writeStatus(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Message: msg, Type: typ, Code: strconv.Itoa(status)}})
}

// statusType names the error type of a status that writeStatus answers.
func statusType(status int) string {
	switch status {
	case http.StatusRequestTimeout:
		return "request_timeout"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	return "invalid"
}

// clipLen bounds what an error message echoes of a request (a path, a
// method), so an answer is never larger than the request made it.
const clipLen = 128

// clip returns s cut to at most n bytes (dropping a rune cut in two),
// marked with "..." when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
