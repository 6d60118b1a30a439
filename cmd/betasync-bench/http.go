package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// startupRow times process start to /readyz 200 with a fresh data
// directory (embedded NATS and the first fetch included); its yardstick is
// the 100 ms target.
func startupRow(ctx context.Context, t *table, bin string, up *upstream, starts int) error {
	var ds []time.Duration
	for range starts {
		d, err := startDaemon(ctx, bin, up, "")
		if err != nil {
			return err
		}
		ds = append(ds, d.startDur)
		d.Stop()
	}
	p50 := quantile(ds, .5)
	t.add(row{
		name:     "start-up to /readyz 200, fresh data dir",
		measured: fmt.Sprintf("p50 %s, max %s", ms(p50), ms(quantile(ds, 1))),
		baseline: "-",
		ratio:    "-",
		target:   "< 100 ms",
		met:      yes(p50 < 100*time.Millisecond),
	})
	return nil
}

// stormRow sends n concurrent reloads for one new upstream document and
// counts the fetches they caused.
func stormRow(ctx context.Context, t *table, d *daemon, up *upstream, n int) error {
	// Open the n connections first (one concurrent GET /healthz each), so
	// that the burst measures the reload path, not the TCP accept rate:
	// coalescing promises at most two fetches for requests that arrive
	// while one runs.
	var warm sync.WaitGroup
	for range n {
		warm.Go(func() { _, _, _ = d.do(ctx, http.MethodGet, "/healthz") })
	}
	warm.Wait()
	up.next()
	before := up.requests.Load()
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	var failed atomic.Int64
	for i := range n {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			code, _, err := d.do(ctx, http.MethodPost, "/reload/anthropic_beta_headers")
			lat[i] = time.Since(t0)
			codes[i] = code
			if err != nil {
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	fetches := up.requests.Load() - before
	ok := 0
	for _, c := range codes {
		if c == http.StatusOK {
			ok++
		}
	}
	t.add(row{
		name:     fmt.Sprintf("reload storm, %d concurrent POSTs", n),
		measured: fmt.Sprintf("%d upstream fetches, %d/%d OK, p50 %s, p99 %s", fetches, ok, n, ms(quantile(lat, .5)), ms(quantile(lat, .99))),
		baseline: fmt.Sprintf("LiteLLM: %d fetches (one per request)", n),
		ratio:    ratio(float64(fetches), float64(n)),
		target:   "<= 2 fetches",
		met:      yes(fetches <= 2 && ok == n && failed.Load() == 0),
	})
	return nil
}

// throughput is requests per second on path with 64 concurrent clients
// for dur.
func throughput(ctx context.Context, d *daemon, path string, dur time.Duration) (float64, error) {
	var count atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				code, _, err := d.do(ctx, http.MethodGet, path)
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("GET %s: %d", path, code)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(count.Load()) / dur.Seconds(), nil
}

// statusRow compares the schedule status (a NATS request to the worker and
// a KV read) with /healthz (a trivial handler) on the same server.
func statusRow(ctx context.Context, t *table, d *daemon) error {
	var status, health []float64
	for range 3 {
		s, err := throughput(ctx, d, "/schedule/anthropic_beta_headers_reload/status", 700*time.Millisecond)
		if err != nil {
			return err
		}
		h, err := throughput(ctx, d, "/healthz", 700*time.Millisecond)
		if err != nil {
			return err
		}
		status, health = append(status, s), append(health, h)
	}
	s, h := median(status), median(health)
	t.add(row{
		name:     "status, 64 concurrent clients",
		measured: fmt.Sprintf("%.0f req/s", s),
		baseline: fmt.Sprintf("/healthz %.0f req/s", h),
		ratio:    ratio(s, h),
		target:   "-",
		met:      "-",
	})
	return nil
}

// memoryRows sends n reload requests (8 at a time, each for a new
// document) in two halves and samples the daemon's RSS and Go heap after
// each: memory that keeps growing from the first half to the second is a
// leak; the step from idle to the first half is warm-up (buffers, the KV
// history filling to its cap).
func memoryRows(ctx context.Context, t *table, d *daemon, up *upstream, idle uint64, n int) error {
	before := up.requests.Load()
	var rss, heap [2]uint64
	for half := range 2 {
		count := n / 2
		if half == 1 {
			count = n - n/2
		}
		if err := reloads(ctx, d, up, count); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		rss[half] = d.RSS()
		heap[half] = d.heapInUse(ctx)
	}
	t.add(row{
		name:     fmt.Sprintf("daemon memory after %d / %d reloads (%d fetches)", n/2, n, up.requests.Load()-before),
		measured: fmt.Sprintf("RSS %s / %s, Go heap in use %s / %s", mib(rss[0]), mib(rss[1]), mib(heap[0]), mib(heap[1])),
		baseline: "RSS idle after start " + mib(idle),
		ratio:    "2nd half " + ratio(float64(rss[1]), float64(rss[0])),
		target:   "no growth in 2nd half",
		met:      yes(float64(rss[1]) <= 1.1*float64(rss[0])),
	})
	if t.heap != nil {
		t.add(*t.heap)
	}
	return nil
}

// reloads sends n reload requests, 8 at a time, each for a new document.
func reloads(ctx context.Context, d *daemon, up *upstream, n int) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				up.next()
				code, body, err := d.do(ctx, http.MethodPost, "/reload/anthropic_beta_headers")
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("reload: %d %s", code, body)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}
