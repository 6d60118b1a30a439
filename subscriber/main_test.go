package subscriber_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/embednats"
	"github.com/betasync/betasync/kv"
)

// TestMain gives Example a fleet to join: an embedded server, named by
// NATS_URL, whose KV holds the embedded default as version 1.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "betasync-subscriber")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		srv, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:-1", StoreDir: dir})
		if err != nil {
			panic(err)
		}
		defer srv.WaitForShutdown()
		defer srv.Shutdown()
		if err := storeDefault(srv.ClientURL()); err != nil {
			panic(err)
		}
		if err := os.Setenv("NATS_URL", srv.ClientURL()); err != nil {
			panic(err)
		}
		return m.Run()
	}())
}

func storeDefault(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := kv.Ensure(ctx, js, kv.Config{})
	if err != nil {
		return err
	}
	v, err := store.Mappings.Put(ctx, betasync.NewSnapshot(betasync.Default(), betasync.SourceEmbedded, time.Now()), 0)
	if err != nil {
		return err
	}
	if v != 1 {
		return fmt.Errorf("stored version %d, want 1", v)
	}
	return nil
}
