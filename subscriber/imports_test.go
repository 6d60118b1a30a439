package subscriber_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportGraphStaysSmall pins what a pod pulls in when it embeds the
// subscriber: the NATS client and our domain, never the NATS server, the
// Prometheus client or the HTTP router.
func TestImportGraphStaysSmall(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/nats-io/nats.go", "the list is the real dependency graph")
	for _, banned := range []string{
		"github.com/nats-io/nats-server/v2",
		"github.com/prometheus/client_golang",
		"github.com/gorilla/mux",
		"github.com/lmittmann/tint",
		"github.com/betasync/betasync/worker",
		"github.com/betasync/betasync/httpapi",
		"github.com/betasync/betasync/embednats",
		"github.com/betasync/betasync/metrics",
	} {
		for _, d := range deps {
			assert.False(t, d == banned || strings.HasPrefix(d, banned+"/"), "the subscriber pulls in %s", d)
		}
	}
}
