package subscriberprom_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/subscriber/subscriberprom"
	"github.com/betasync/betasync/worker"
)

// A real worker stores a version on a real embedded NATS; the pod's
// subscriber applies it, and the collector exports what it holds.
func TestCollectorExportsTheSubscriber(t *testing.T) {
	s := testbed.NewStack(t, testbed.Serve(testbed.DocUpstream), worker.Config{}, worker.Deps{})
	res, err := s.Worker.Reload(t.Context())
	require.NoError(t, err)
	sub, err := subscriber.New(s.NC, subscriber.WithoutFleet())
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	require.Eventually(t, func() bool { return sub.Current().Version == res.Version }, 10*time.Second, 10*time.Millisecond)

	reg := prometheus.NewRegistry()
	reg.MustRegister(subscriberprom.New(sub))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP betasync_subscriber_config_version Mapping version this pod serves (0: the embedded default).
# TYPE betasync_subscriber_config_version gauge
betasync_subscriber_config_version `+itoa(res.Version)+`
# HELP betasync_subscriber_ready 1 once a version from the bus is in use.
# TYPE betasync_subscriber_ready gauge
betasync_subscriber_ready 1
`), "betasync_subscriber_config_version", "betasync_subscriber_ready"))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 8, n)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
