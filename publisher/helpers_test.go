package publisher_test

import (
	"net/http"
	"testing"

	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/worker"
)

var docUpstream = testbed.DocUpstream

// newStack is a worker served as the micro service on a real server, and a
// client on its own connection.
func newStack(t *testing.T, h http.HandlerFunc) *testbed.Stack {
	t.Helper()
	return testbed.NewStack(t, h, worker.Config{}, worker.Deps{})
}
