package metrics_test

import (
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(body)
}

func TestSeriesExistFromTheStart(t *testing.T) {
	m := metrics.New()
	body := scrape(t, m)
	for _, trig := range []string{"manual", "schedule", "startup"} {
		for _, out := range []string{"changed", "unchanged", "error"} {
			assert.Contains(t, body, `betasync_reloads_total{outcome="`+out+`",trigger="`+trig+`"} 0`)
		}
	}
	assert.Contains(t, body, "betasync_nats_connected 0")
	assert.Contains(t, body, "betasync_schedule_next_run_timestamp_seconds 0")
	assert.Contains(t, body, `betasync_fetch_duration_seconds_count{outcome="error"} 0`)
}

func TestBuildInfoConnectedFetchAndNextRun(t *testing.T) {
	m := metrics.New()
	m.SetBuildInfo("1.2.3", "abc", "go1.26")
	m.WatchNATS(func() bool { return true })
	m.FetchFinished("ok", 30*time.Millisecond)
	next := time.Unix(1_800_000_000, 0)
	m.ScheduleNext(&next)
	body := scrape(t, m)
	assert.Contains(t, body, `betasync_build_info{commit="abc",goversion="go1.26",version="1.2.3"} 1`)
	assert.Contains(t, body, "betasync_nats_connected 1")
	assert.Contains(t, body, `betasync_fetch_duration_seconds_count{outcome="ok"} 1`)
	assert.Contains(t, body, "betasync_schedule_next_run_timestamp_seconds 1.8e+09")
	m.ScheduleNext(nil)
	assert.Contains(t, scrape(t, m), "betasync_schedule_next_run_timestamp_seconds 0")
}
