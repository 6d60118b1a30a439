package subscriber_test

import (
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/betasync/betasync/embednats"
	"github.com/betasync/betasync/subscriber"
)

// A pod embeds one Subscriber on its own NATS connection and filters each
// request's anthropic-beta header through Current. Until a worker stores a
// version, the embedded default answers.
func Example() {
	// In production the pod connects to the cluster; here an embedded
	// server stands in for it.
	dir, err := os.MkdirTemp("", "betasync-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:-1", StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.WaitForShutdown()
	defer srv.Shutdown()

	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1))
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

	// Per request: one atomic load, no locks; with a reused buffer, no
	// allocations.
	buf := make([]string, 0, 16)
	header := "context-1m-2025-08-07,interleaved-thinking-2025-05-14,advanced-tool-use-2025-11-20"
	buf = sub.Current().AppendBetas(buf[:0], "bedrock", header)
	fmt.Println(strings.Join(buf, ","))
	// Output: context-1m-2025-08-07,tool-search-tool-2025-10-19
}
