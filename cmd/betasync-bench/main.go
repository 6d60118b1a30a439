// Command betasync-bench measures betasync from outside and prints one
// table: each row next to a baseline measured in the same run, as medians
// (and p99s) over repeated rounds, so that a busy machine distorts the
// ratio far less than the raw numbers.
//
// It runs the real daemon (cmd/betasync, built unless BENCH_DAEMON names a
// binary) with its embedded NATS server, a local upstream on httptest, and
// real subscribers, each on its own TCP connection. Sizes come from the
// environment:
//
//	BENCH_PODS     fleet sizes, comma-separated        (10,200,1000)
//	BENCH_ROUNDS   propagation rounds per size          (60)
//	BENCH_STORM    concurrent reload requests           (1000)
//	BENCH_RELOADS  reloads, in two halves, for memory     (10000)
//	BENCH_STARTS   daemon start-ups timed               (5)
//	BENCH_REPEAT   repeats of each micro-benchmark      (5)
//	BENCH_REGION_PODS  pods on two leaf nodes of a hub cluster (200; 0 skips)
//	BENCH_DOC      the mapping document                 (testdata/litellm_upstream.json)
//	BENCH_DAEMON   a built cmd/betasync binary          (built into a temp dir)
//	BENCH_DAEMON_LOG  non-empty: the daemon's stderr goes to ours
//	BENCH_CPUPROFILE  this process's CPU profile of the propagation rounds, to PATH.N
//
// See docs/PERFORMANCE.md for what each row means.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "betasync-bench:", err)
		os.Exit(1)
	}
}

// options are the sizes of one run.
type options struct {
	pods       []int
	rounds     int
	storm      int
	reloads    int
	starts     int
	repeat     int
	regionPods int
	// outagePods pods behind a leaf cut off from its hub, outageRounds
	// outages (0 skips the row).
	outagePods, outageRounds int
	doc                      string
	daemon                   string
}

func loadOptions(getenv func(string) string) (options, error) {
	o := options{doc: "testdata/litellm_upstream.json", daemon: getenv("BENCH_DAEMON")}
	if v := getenv("BENCH_DOC"); v != "" {
		o.doc = v
	}
	num := func(name string, def int) (int, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
		}
		return n, nil
	}
	var err error
	for _, f := range []struct {
		name string
		def  int
		into *int
	}{
		{"BENCH_ROUNDS", 60, &o.rounds},
		{"BENCH_STORM", 1000, &o.storm},
		{"BENCH_RELOADS", 10000, &o.reloads},
		{"BENCH_STARTS", 5, &o.starts},
		{"BENCH_REPEAT", 5, &o.repeat},
		{"BENCH_REGION_PODS", 200, &o.regionPods},
		{"BENCH_OUTAGE_PODS", 50, &o.outagePods},
		{"BENCH_OUTAGE_ROUNDS", 5, &o.outageRounds},
	} {
		if *f.into, err = num(f.name, f.def); err != nil {
			return o, err
		}
	}
	pods := getenv("BENCH_PODS")
	if pods == "" {
		pods = "10,200,1000"
	}
	for p := range strings.SplitSeq(pods, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("BENCH_PODS=%q: want comma-separated positive integers", pods)
		}
		o.pods = append(o.pods, n)
	}
	return o, nil
}

func run(ctx context.Context, _ []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := loadOptions(getenv)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(o.doc)
	if err != nil {
		return fmt.Errorf("BENCH_DOC: %w", err)
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	var t table

	if o.repeat > 0 {
		progress("micro-benchmarks (%d repeats)", o.repeat)
		microRows(&t, doc, o.repeat)
	}

	bin, cleanup, err := daemonBinary(ctx, o.daemon, progress)
	if err != nil {
		return err
	}
	defer cleanup()
	up := newUpstream(doc)
	defer up.Close()

	if o.starts > 0 {
		progress("start-up x%d", o.starts)
		if err := startupRow(ctx, &t, bin, up, o.starts); err != nil {
			return err
		}
	}

	d, err := startDaemon(ctx, bin, up, "")
	if err != nil {
		return err
	}
	defer d.Stop()
	idleRSS := d.RSS()

	for _, n := range o.pods {
		progress("fleet propagation, %d pods x %d rounds", n, o.rounds)
		if err := fleetRows(ctx, &t, d, up, n, o.rounds, nil, ""); err != nil {
			return err
		}
	}
	if o.storm > 0 {
		progress("reload storm of %d", o.storm)
		if err := stormRow(ctx, &t, d, up, o.storm); err != nil {
			return err
		}
	}
	progress("status throughput")
	if err := statusRow(ctx, &t, d); err != nil {
		return err
	}
	if o.regionPods > 0 {
		progress("regions: hub cluster of 3, two leaf nodes, %d pods on the leaves", o.regionPods)
		if err := regionsRow(ctx, &t, bin, up, o.regionPods, o.rounds); err != nil {
			return err
		}
	}
	if o.outagePods > 0 && o.outageRounds > 0 {
		progress("leaf outage: %d pods behind a leaf cut off from its hub, %d rounds", o.outagePods, o.outageRounds)
		if err := outageRow(ctx, &t, bin, up, o.outagePods, o.outageRounds); err != nil {
			return err
		}
	}
	progress("%d reloads, then RSS", o.reloads)
	if err := memoryRows(ctx, &t, d, up, idleRSS, o.reloads); err != nil {
		return err
	}
	t.print(stdout, o)
	return nil
}
