package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunPrintsTheTable runs the bench with tiny sizes against the real
// daemon (built from this module) and checks that every row is printed. It
// asserts nothing about the numbers: benchmarks measure, tests do not time.
func TestRunPrintsTheTable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := map[string]string{
		"BENCH_DOC":         "../../testdata/litellm_upstream.json",
		"BENCH_PODS":        "2,3",
		"BENCH_ROUNDS":      "2",
		"BENCH_STORM":       "5",
		"BENCH_RELOADS":     "5",
		"BENCH_STARTS":      "1",
		"BENCH_REPEAT":      "1",
		"BENCH_REGION_PODS": "2",
		"BENCH_OUTAGE_PODS": "2", "BENCH_OUTAGE_ROUNDS": "1",
	}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"betasync-bench"}, func(k string) string { return env[k] }, &stdout, &stderr)
	require.NoError(t, err, "stderr: %s", stderr.String())
	out := stdout.String()
	for _, want := range []string{
		"lookup bedrock, 1 goroutine", "lookup bedrock, parallel", "parse upstream doc", "parse canonical doc",
		"pod decode", "start-up to /readyz 200", "propagation, 2 pods", "propagation, 3 pods",
		"reload storm, 5 concurrent POSTs", "status, 64 concurrent clients", "daemon memory after 2 / 5 reloads",
		"heap per subscriber (3 pods)", "propagation, 2 pods, 2 leaf nodes of a 3-node hub",
		"leaf outage catch-up, 2 pods behind the leaf",
	} {
		assert.Contains(t, out, want)
	}
	assert.Equal(t, 1, strings.Count("\n"+out, "\nrow "), "one table")
}

func TestLoadOptionsRejectsNonsense(t *testing.T) {
	for _, tt := range []struct{ name, key, value string }{
		{"pods not a number", "BENCH_PODS", "10,x"},
		{"pods zero", "BENCH_PODS", "0"},
		{"negative rounds", "BENCH_ROUNDS", "-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadOptions(func(k string) string {
				if k == tt.key {
					return tt.value
				}
				return ""
			})
			assert.ErrorContains(t, err, tt.key)
		})
	}
}
