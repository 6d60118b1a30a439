// Command betasync runs the betasync daemon (the admin API and the worker,
// with an embedded NATS server unless NATS_URL is set), or, given a
// subcommand, an operator tool: filter or validate.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "betasync:", err)
		os.Exit(exitCode(err))
	}
}
