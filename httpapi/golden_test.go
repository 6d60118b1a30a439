package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/internal/golden"
	"github.com/betasync/betasync/internal/testbed"
)

// fixedMapping serves one version.
type fixedMapping struct{ snap *betasync.Snapshot }

func (f fixedMapping) Current() *betasync.Snapshot { return f.snap }

// TestMappingGolden pins the body of GET /anthropic_beta_headers.
func TestMappingGolden(t *testing.T) {
	m, err := betasync.Parse([]byte(`{"description": "golden", "provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"},
  "bedrock": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19", "context-1m-2025-08-07": null}}`))
	require.NoError(t, err)
	snap := &betasync.Snapshot{
		Mapping:   m,
		Version:   7,
		Source:    betasync.SourceRemote,
		FetchedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		URL:       "https://example.test/m.json",
		ETag:      `"e1"`,
		AppliedAt: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
	}
	for _, tt := range []struct {
		name, file string
		snap       *betasync.Snapshot
	}{
		{"remote", "../testdata/golden/http_mapping.json", snap},
		{"embedded default", "../testdata/golden/http_mapping_embedded.json", &betasync.Snapshot{
			Mapping: m, Source: betasync.SourceEmbedded, AppliedAt: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := httptest.NewServer(httpapi.NewServer(httpapi.Config{
				Commands: &testbed.Commands{}, Mapping: fixedMapping{tt.snap}, Keys: keyring(t),
			}))
			t.Cleanup(api.Close)
			e := &env{api: api}
			r := e.do(t, http.MethodGet, pathMapping, bearer(viewerKey))
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			golden.Assert(t, tt.file, r.body)
		})
	}
}

func (f fixedMapping) WaitVersion(context.Context, uint64) error { return nil }
