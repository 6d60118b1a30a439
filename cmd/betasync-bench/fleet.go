package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/subscriber"
	"github.com/nats-io/nats.go"
)

const floorSubject = "bench.floor"

// tracker records, per version, when each pod swapped to it.
type tracker struct {
	n        int
	mu       sync.Mutex
	versions map[uint64]*arrivals
}

type arrivals struct {
	count       int
	first, last time.Time
	done        chan struct{}
}

func (t *tracker) get(v uint64) *arrivals {
	a := t.versions[v]
	if a == nil {
		a = &arrivals{done: make(chan struct{})}
		t.versions[v] = a
	}
	return a
}

// swapped is every pod's OnUpdate.
func (t *tracker) swapped(snap *betasync.Snapshot) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.get(snap.Version)
	if a.count == 0 {
		a.first = now
	}
	a.count++
	a.last = now
	if a.count == t.n {
		close(a.done)
	}
}

// wait returns when every pod has swapped to v.
func (t *tracker) wait(ctx context.Context, v uint64) (*arrivals, error) {
	t.mu.Lock()
	a := t.get(v)
	t.mu.Unlock()
	select {
	case <-a.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("version %d: only some of %d pods swapped within 60s", v, t.n)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.versions, v)
	return a, nil
}

// floor counts the raw publishes received by the pods' connections.
type floor struct {
	n    int64
	got  atomic.Int64
	last atomic.Int64 // unix nanos
	done atomic.Pointer[chan struct{}]
}

// reset readies f for the next round and returns the channel closed when
// every connection has received it.
func (f *floor) reset() chan struct{} {
	done := make(chan struct{})
	f.done.Store(&done)
	f.got.Store(0)
	return done
}

func (f *floor) receive(*nats.Msg) {
	now := time.Now().UnixNano()
	if f.got.Add(1) == f.n {
		f.last.Store(now)
		close(*f.done.Load())
	}
}

type pod struct {
	nc  *nats.Conn
	sub *subscriber.Subscriber
}

func goHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// fleetRows measures propagation to n pods: from the reload request to
// the last pod's swap, against one GET of the same document from the same
// upstream plus one raw publish of the same bytes to the same connections.
//
// Pods connect to podURLs in turn (the daemon's server when empty); label,
// when set, names the topology in the row and leaves the heap row alone.
func fleetRows(ctx context.Context, t *table, d *daemon, up *upstream, n, rounds int, podURLs []string, label string, opts ...subscriber.Option) error {
	if len(podURLs) == 0 {
		podURLs = []string{d.natsURL}
	}
	tr := &tracker{n: n, versions: map[uint64]*arrivals{}}
	fl := &floor{n: int64(n)}
	fl.reset()
	pods := make([]pod, n)
	defer func() {
		var wg sync.WaitGroup
		for i := range pods {
			wg.Go(func() {
				if pods[i].sub != nil {
					pods[i].sub.Close()
				}
				if pods[i].nc != nil {
					pods[i].nc.Close()
				}
			})
		}
		wg.Wait()
	}()

	heap0 := goHeap()
	if err := parallel(n, 32, func(i int) error {
		nc, err := nats.Connect(podURLs[i%len(podURLs)], nats.Name(fmt.Sprintf("bench-pod-%d", i)), nats.MaxReconnects(-1))
		if err != nil {
			return err
		}
		pods[i].nc = nc
		_, err = nc.Subscribe(floorSubject, fl.receive)
		if err != nil {
			return err
		}
		return nc.FlushTimeout(10 * time.Second)
	}); err != nil {
		return fmt.Errorf("connecting pods: %w", err)
	}
	heap1 := goHeap()
	if err := parallel(n, 32, func(i int) error {
		s, err := subscriber.New(pods[i].nc, append([]subscriber.Option{subscriber.WithOnUpdate(tr.swapped), subscriber.WithPodID(fmt.Sprintf("bench-%d", i))}, opts...)...) //nolint:contextcheck // stops on Close
		if err != nil {
			return err
		}
		pods[i].sub = s
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return s.WaitReady(wctx)
	}); err != nil {
		return fmt.Errorf("starting subscribers: %w", err)
	}
	heap2 := goHeap()

	pub, err := nats.Connect(d.natsURL, nats.Name("bench-floor-publisher"))
	if err != nil {
		return err
	}
	defer pub.Close()
	get := &http.Client{}

	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", path, n))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var reload, base, first, reply []time.Duration
	for range rounds {
		// The reload, from the request to the last pod's swap.
		up.next()
		t0 := time.Now()
		code, body, err := d.do(ctx, http.MethodPost, "/reload/anthropic_beta_headers")
		if err != nil {
			return err
		}
		replied := time.Since(t0)
		var res struct {
			Version uint64 `json:"version"`
			Changed bool   `json:"changed"`
		}
		if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || !res.Changed {
			return fmt.Errorf("reload: %d %s", code, body)
		}
		a, err := tr.wait(ctx, res.Version)
		if err != nil {
			return err
		}
		reload = append(reload, a.last.Sub(t0))
		first = append(first, a.first.Sub(t0))
		reply = append(reply, replied)

		// The floor: the same bytes, fetched and published raw.
		data, err := json.Marshal(pods[0].sub.Current())
		if err != nil {
			return err
		}
		done := fl.reset()
		t0 = time.Now()
		resp, err := get.Get(up.URL)
		if err != nil {
			return err
		}
		if _, err := readAll(resp); err != nil {
			return err
		}
		if err := pub.Publish(floorSubject, data); err != nil {
			return err
		}
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			return fmt.Errorf("floor: %d of %d received", fl.got.Load(), n)
		}
		base = append(base, time.Unix(0, fl.last.Load()).Sub(t0))
	}
	p50, p99, b50, b99 := quantile(reload, .5), quantile(reload, .99), quantile(base, .5), quantile(base, .99)
	t.add(row{
		name:     fmt.Sprintf("propagation, %d pods%s", n, label),
		measured: fmt.Sprintf("p50 %s, p99 %s", ms(p50), ms(p99)),
		baseline: fmt.Sprintf("GET + raw publish p50 %s, p99 %s", ms(b50), ms(b99)),
		ratio:    fmt.Sprintf("p50 %s, p99 %s", ratio(float64(p50), float64(b50)), ratio(float64(p99), float64(b99))),
		target:   "p99 <= 2x baseline",
		met:      yes(p99 <= 2*b99),
	})
	t.add(row{
		name:     fmt.Sprintf("  detail, %d pods%s", n, label),
		measured: fmt.Sprintf("reply p50 %s, first pod p50 %s", ms(quantile(reply, .5)), ms(quantile(first, .5))),
		baseline: fmt.Sprintf("last - first pod p50 %s", ms(quantile(reload, .5)-quantile(first, .5))),
		ratio:    "", target: "", met: "",
	})
	if label != "" {
		return nil
	}
	t.heap = &row{
		name:     fmt.Sprintf("heap per subscriber (%d pods)", n),
		measured: fmt.Sprintf("%.1f KiB", float64(heap2-heap1)/float64(n)/1024),
		baseline: fmt.Sprintf("its NATS connection %.1f KiB", float64(heap1-heap0)/float64(n)/1024),
		ratio:    ratio(float64(heap2-heap1), float64(heap1-heap0)),
		target:   "-", met: "-",
	}
	return nil
}

func readAll(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}

// parallel runs fn(0..n-1) on up to width goroutines and returns the first
// error.
func parallel(n, width int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  atomic.Int64
	)
	for range min(n, width) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
