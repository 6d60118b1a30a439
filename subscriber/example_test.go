package subscriber_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/betasync/betasync/subscriber"
)

// A pod embeds one Subscriber on its own NATS connection, waits (bounded)
// for the fleet's version before it serves, and filters each request's
// anthropic-beta header through Current. (When this runs as a test,
// TestMain points NATS_URL at an embedded server holding version 1.)
func Example() {
	// The pod's connection to the fleet's NATS, e.g. nats://nats:4222.
	nc, err := nats.Connect(os.Getenv("NATS_URL"), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	// Once per pod: the Subscriber uses nc and never closes it.
	sub, err := subscriber.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	// Before serving: wait for the version stored in KV. If NATS is out of
	// reach, the embedded default answers until a version arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		log.Printf("serving the embedded default mapping for now: %v", err)
	}
	fmt.Println("version", sub.Current().Version)

	// Per request: one atomic load, no locks; with a reused buffer, no
	// allocations. In a handler, pass r.Header.Values("anthropic-beta")...
	buf := make([]string, 0, 16)
	header := "context-1m-2025-08-07,interleaved-thinking-2025-05-14,advanced-tool-use-2025-11-20"
	buf = sub.Current().AppendBetas(buf[:0], "bedrock", header)
	fmt.Println(strings.Join(buf, ","))
	// Output:
	// version 1
	// context-1m-2025-08-07,tool-search-tool-2025-10-19
}
