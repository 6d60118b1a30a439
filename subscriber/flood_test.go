package subscriber_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/syncbuf"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
)

// TestEventFlood reproduces the outside test: 20,000 bad events wrote
// 20,060 WARN lines per pod, and 60 invalid 2.7 MB events took RSS from 20
// to 235 MB. Oversized events are now dropped before decoding, and
// rejected events are counted in Stats but logged at most 10 times a
// minute.
func TestEventFlood(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	var logs syncbuf.Buffer
	p := newPod(t, nc, subscriber.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	announce(t, nc, doc(t, 1), 1)
	p.waitVersion(t, 1)

	const bad, huge = 20_000, 60
	before := p.Stats()
	forger := srv.Connect(t)
	for i := range bad {
		require.NoError(t, forger.Publish(publisher.SubjectConfigUpdated, []byte(`{"version": 99, "config": "not a doc `+strings.Repeat("x", i%7)+`"}`)))
	}
	big := append([]byte(`{"version": 100, "junk": "`), bytes.Repeat([]byte("x"), 2_700_000)...)
	big = append(big, `"}`...)
	require.NoError(t, forger.FlushWithContext(busCtx(t)))
	for i := range huge {
		// One at a time: 60 x 2.7 MB at once would overflow the client's
		// pending buffer (64 MiB), which drops them before our callback:
		// also bounded, but not what this test looks at.
		require.NoError(t, forger.Publish(publisher.SubjectConfigUpdated, big))
		require.NoError(t, forger.FlushWithContext(busCtx(t)))
		want := before.Invalid + bad + uint64(i) + 1
		require.Eventually(t, func() bool { return p.Stats().Invalid >= want }, waitFor, time.Millisecond)
	}
	// Events are handled in order: once a later good version is in, the
	// flood has been handled.
	announce(t, nc, doc(t, 2), 200)
	p.waitVersion(t, 200)

	assert.Equal(t, before.Invalid+bad+huge, p.Stats().Invalid, "every rejected event is counted")
	warns := strings.Count(logs.String(), "level=WARN")
	assert.LessOrEqual(t, warns, 12, "the log of rejected events is rate-limited")
	assert.Contains(t, logs.String(), "limit reached")
	last := p.Status().LastRejected
	require.NotNil(t, last, "the last rejection is recorded")
	assert.Contains(t, last.Reason, "over the 2097152-byte limit", "the oversized events came last and were dropped unread")
}
