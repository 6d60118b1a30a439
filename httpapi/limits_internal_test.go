package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeJSONBody answers what is wrong with a body, and never more than a
// clipped piece of it. Served through NewHTTPServer, as a handler would be.
func TestDecodeJSONBody(t *testing.T) {
	const limit = 256
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Hours float64 `json:"hours"`
		}
		if err := decodeJSONBody(w, r, &v, limit); err != nil {
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	srv := NewHTTPServer(h, time.Second, nil)
	// The only short limit here: a body that stops arriving is cut off by
	// the read timeout (30 s in production).
	srv.ReadTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	url := "http://" + ln.Addr().String() + "/"

	longField := strings.Repeat("f", 200)
	tests := []struct {
		name, body string
		status     int
		typ, msg   string
	}{
		{"ok", `{"hours": 2}`, http.StatusOK, "", ""},
		{"too large", `{"hours": 2, "pad": "` + strings.Repeat("x", 1000) + `"}`, http.StatusRequestEntityTooLarge, "request_too_large", "larger than 256 bytes"},
		{"empty", ``, http.StatusBadRequest, "invalid", "empty"},
		{"two values", `{"hours": 2} {}`, http.StatusBadRequest, "invalid", "data after the JSON value"},
		{"trailing garbage", `{"hours": 2} x`, http.StatusBadRequest, "invalid", "data after the JSON value"},
		{"cut short", `{"hours":`, http.StatusBadRequest, "invalid", "ends too early"},
		{"not JSON", `hours=2`, http.StatusBadRequest, "invalid", "not valid JSON at byte"},
		{"unknown field", `{"nope": 1}`, http.StatusBadRequest, "invalid", `unknown field "nope"`},
		{"long unknown field", `{"` + longField + `": 1}`, http.StatusBadRequest, "invalid", "..."},
		{"wrong type", `{"hours": "x"}`, http.StatusBadRequest, "invalid", "hours must be a float64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url, strings.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.StatusCode, "%s", body)
			assert.Less(t, len(body), 400, "%s", body)
			if tt.status == http.StatusOK {
				return
			}
			var e errorBody
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			assert.Equal(t, tt.typ, e.Error.Type)
			assert.Equal(t, fmt.Sprint(tt.status), e.Error.Code)
			assert.Contains(t, e.Error.Message, tt.msg)
			assert.NotContains(t, e.Error.Message, longField)
		})
	}

	t.Run("a body that stops arriving", func(t *testing.T) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer func() { _ = conn.Close() }()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(conn, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"hours\"")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
		assert.True(t, resp.Close)
	})
}

func TestClip(t *testing.T) {
	assert.Equal(t, "short", clip("short", 10))
	assert.Equal(t, "abc...", clip("abcdef", 3))
	assert.Equal(t, "a...", clip("aé", 2), "a rune cut in two is dropped")
}
