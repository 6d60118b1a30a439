package publisher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
	"github.com/betasync/betasync/publisher"
)

// TestStalledResponder reproduces the outside test: with one of two workers
// SIGSTOPped, about half the admin commands hung 30 s and failed; when it
// resumed it ran every queued command 90-120 s late, concurrently and out of
// order. Now every command is answered by the healthy responder (a command
// that went to the frozen one is retried on another; the server drops the
// frozen client after a few unanswered pings), and the frozen one drops
// what it receives late instead of running it.
func TestStalledResponder(t *testing.T) {
	srv := natstest.StartWithPingInterval(t, 300*time.Millisecond)
	healthy, frozen := &testbed.Commands{}, &testbed.Commands{}
	testbed.ServeCommands(t, srv.Connect(t), healthy, "healthy")
	proxy := testbed.NewProxy(t, srv.Listen())
	frozenNC, err := nats.Connect(proxy.URL())
	require.NoError(t, err)
	t.Cleanup(frozenNC.Close)
	frozenSvc := testbed.ServeCommands(t, frozenNC, frozen, "frozen")
	client := publisher.NewClient(srv.Connect(t))

	proxy.Pause() // SIGSTOP
	const commands = 16
	var wg sync.WaitGroup
	for i := range commands {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if i%2 == 0 {
				_, err := client.SetSchedule(ctx, 24)
				assert.NoError(t, err, "command %d", i)
			} else {
				_, err := client.CancelSchedule(ctx)
				assert.NoError(t, err, "command %d", i)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(commands), healthy.Calls.Load(), "the healthy responder answered every command")

	// The commands that went to the frozen responder are long past their
	// start-by time when it resumes (SIGCONT): it drops them all.
	time.Sleep(publisher.AckTimeout)
	proxy.Resume()
	require.Eventually(t, func() bool { return frozenSvc.Dropped() > 0 }, 10*time.Second, 10*time.Millisecond,
		"the frozen responder received some of the commands")
	require.NoError(t, frozenNC.Flush())
	assert.Zero(t, frozen.Calls.Load(), "no command ran late")
}

// TestResponderDiesMidCommand: a responder that takes a command and dies
// (SIGKILL) costs the caller one retry, not its whole deadline.
func TestResponderDiesMidCommand(t *testing.T) {
	srv := natstest.Start(t)
	dying := &testbed.Commands{Block: make(chan struct{})}
	t.Cleanup(func() { close(dying.Block) })
	proxy := testbed.NewProxy(t, srv.Listen())
	dyingNC, err := nats.Connect(proxy.URL(), nats.NoReconnect())
	require.NoError(t, err)
	t.Cleanup(dyingNC.Close)
	_, err = publisher.Serve(dyingNC, dying, publisher.ServiceConfig{ReplicaID: "dying"})
	require.NoError(t, err)
	client := publisher.NewClient(srv.Connect(t))

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() {
		_, err := client.Reload(ctx)
		result <- err
	}()
	require.Eventually(t, func() bool { return dying.Calls.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
	healthy := &testbed.Commands{}
	testbed.ServeCommands(t, srv.Connect(t), healthy, "healthy")
	proxy.Kill()

	select {
	case err := <-result:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("the caller waited out its deadline")
	}
	assert.Equal(t, int64(1), healthy.Calls.Load(), "the retry went to the live responder")
}

// TestExpiredCommandIsDropped: a command whose start-by time has passed
// when it arrives is not run and not answered.
func TestExpiredCommandIsDropped(t *testing.T) {
	srv := natstest.Start(t)
	cmds := &testbed.Commands{}
	svc := testbed.ServeCommands(t, srv.Connect(t), cmds, "r1")
	nc := srv.Connect(t)
	past := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	for _, h := range []string{publisher.HeaderStartBy, publisher.HeaderDeadline} {
		msg := &nats.Msg{Subject: publisher.SubjectScheduleCancel, Header: nats.Header{h: []string{past}}}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		_, err := nc.RequestMsgWithContext(ctx, msg)
		cancel()
		assert.ErrorIs(t, err, context.DeadlineExceeded, "%s in the past: no answer", h)
	}
	assert.Zero(t, cmds.Calls.Load())
	assert.Equal(t, int64(2), svc.Dropped())

	t.Run("without delivery headers (the nats CLI) a command runs as before", func(t *testing.T) {
		msg := testbed.Request(t, nc, publisher.SubjectScheduleCancel, nil)
		assert.Empty(t, msg.Header.Get(publisher.HeaderProgress), "no progress messages for a plain request")
		assert.Equal(t, int64(1), cmds.Calls.Load())
	})
}
