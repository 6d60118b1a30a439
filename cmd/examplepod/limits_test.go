package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/natstest"
)

// exchange sends a hand-written request on a new connection and reads the
// answer, writing beside the read so that an answer sent before the whole
// request was read (a 431) is still heard. It also reports whether the pod
// closed the connection after the answer.
func exchange(t *testing.T, addr, request string) (resp *http.Response, body string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second))) // a hung test, not a measure
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = io.WriteString(conn, request) // fails once the pod hangs up
	}()
	defer func() {
		_ = conn.Close()
		<-wrote
	}()
	br := bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_, err = br.ReadByte()
	return resp, string(b), errors.Is(err, io.EOF)
}

// request is a request written by hand. It asks the pod to close the
// connection after the answer unless it sends a body, which the pod must
// close by itself.
func request(method, target string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: pod\r\n", method, target)
	if len(headers) == 0 || !strings.HasPrefix(headers[0], "Content-Length") {
		b.WriteString("Connection: close\r\n")
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	return b.String() + "\r\n"
}

// The pod has the admin API's limits: a trickled body does not hold a
// connection, headers are capped, nothing echoes a long path, and an
// encoded separator is refused.
func TestPodLimits(t *testing.T) {
	srv := natstest.Start(t)
	addr := strings.TrimPrefix(startPod(t, srv.ClientURL()), "http://")
	filter := "/filter?provider=bedrock"

	t.Run("a trickled body is answered and the connection closed", func(t *testing.T) {
		for target, want := range map[string]int{filter: http.StatusOK, "/nope": http.StatusNotFound} {
			resp, _, closed := exchange(t, addr, request(http.MethodGet, target, "Content-Length: 1000")+"x")
			assert.Equal(t, want, resp.StatusCode, target)
			assert.True(t, resp.Close, target)
			assert.True(t, closed, "%s: the pod must close the connection", target)
		}
	})
	t.Run("900 KB of headers", func(t *testing.T) {
		resp, body, _ := exchange(t, addr, request(http.MethodGet, filter, "X-Big: "+strings.Repeat("a", 900<<10)))
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
		assert.Less(t, len(body), 100)
	})
	t.Run("1 MB path", func(t *testing.T) {
		resp, body, _ := exchange(t, addr, request(http.MethodGet, "/"+strings.Repeat("a", 1<<20)))
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
		assert.Less(t, len(body), 100)
	})
	t.Run("60 KB path", func(t *testing.T) {
		resp, body, _ := exchange(t, addr, request(http.MethodGet, "/"+strings.Repeat("a", 60<<10)))
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Less(t, len(body), 100)
	})
	for _, target := range []string{"/filter%2F?provider=bedrock", "//filter?provider=bedrock", "/x/../filter?provider=bedrock"} {
		t.Run(target, func(t *testing.T) {
			resp, body, _ := exchange(t, addr, request(http.MethodGet, target))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Contains(t, body, `"type": "invalid"`)
		})
	}
	t.Run("a plain request still works", func(t *testing.T) {
		resp, body, _ := exchange(t, addr, request(http.MethodGet, filter, "anthropic-beta: context-1m-2025-08-07"))
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Contains(t, body, `"provider":"bedrock"`)
	})
}
