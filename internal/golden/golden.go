// Package golden compares test output with files under testdata/golden, so
// that a public encoding (an event, a KV value, an HTTP reply) cannot change
// by accident. Run the tests with -update to rewrite the files after a
// deliberate change, and review the diff.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Assert checks that got equals the golden file path (relative to the
// test's package directory), byte for byte.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file %s (run the test with -update to create it)", path)
	assert.Equal(t, string(want), string(got), "differs from %s: a public encoding changed", path)
}
