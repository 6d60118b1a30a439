package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const masterKey = "bench-master-key"

// daemonBinary returns the daemon binary to run: path, or one built from
// this module into a temporary directory.
func daemonBinary(ctx context.Context, path string, progress func(string, ...any)) (string, func(), error) {
	if path != "" {
		return path, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "betasync-bench-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "betasync")
	progress("building the daemon")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/betasync/betasync/cmd/betasync")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building the daemon: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// upstream serves the mapping document. Every call to next makes the
// following fetches see a new document (a new description), so that each
// reload stores and announces a new version.
type upstream struct {
	*httptest.Server
	doc      []byte
	gen      atomic.Int64
	requests atomic.Int64
}

func newUpstream(doc []byte) *upstream {
	u := &upstream{doc: doc}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		u.requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(u.body(u.gen.Load()))
	}))
	return u
}

// body is the document of generation gen.
func (u *upstream) body(gen int64) []byte {
	return bytes.Replace(u.doc, []byte(`"description": "`), fmt.Appendf(nil, `"description": "generation %d: `, gen), 1)
}

func (u *upstream) next() { u.gen.Add(1) }

// daemon is a running cmd/betasync process with an embedded NATS server.
type daemon struct {
	cmd      *exec.Cmd
	dir      string
	natsURL  string
	base     string // http://127.0.0.1:port
	client   *http.Client
	exited   chan struct{}
	startDur time.Duration // process start to /readyz 200
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("not a TCP address: %v", ln.Addr())
	}
	return addr.Port, nil
}

// startDaemon starts the daemon with a fresh data directory and waits for
// /readyz.
func startDaemon(ctx context.Context, bin string, up *upstream, dir string, env ...string) (*daemon, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "betasync-bench-data-"); err != nil {
			return nil, err
		}
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	d := &daemon{
		dir:     dir,
		natsURL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
		base:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 2000, MaxIdleConnsPerHost: 2000, IdleConnTimeout: time.Minute,
		}, Timeout: time.Minute},
		exited: make(chan struct{}),
	}
	d.cmd = exec.Command(bin)
	d.cmd.Env = append(os.Environ(),
		"LITELLM_MASTER_KEY="+masterKey,
		"LITELLM_ANTHROPIC_BETA_HEADERS_URL="+up.URL,
		fmt.Sprintf("BETASYNC_NATS_LISTEN=127.0.0.1:%d", natsPort),
		fmt.Sprintf("BETASYNC_HTTP_ADDR=127.0.0.1:%d", httpPort),
		"BETASYNC_DATA_DIR="+filepath.Join(dir, "data"),
		"BETASYNC_LOG_LEVEL=error",
		"BETASYNC_LOG_FORMAT=json",
	)
	d.cmd.Env = append(d.cmd.Env, env...)
	for _, kv := range env {
		if url, ok := strings.CutPrefix(kv, "NATS_URL="); ok {
			d.natsURL, _, _ = strings.Cut(url, ",")
		}
	}
	var stderr bytes.Buffer
	d.cmd.Stderr = &stderr
	if os.Getenv("BENCH_DAEMON_LOG") != "" {
		d.cmd.Stderr = os.Stderr
	}
	start := time.Now()
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	probe := &http.Client{Timeout: 200 * time.Millisecond}
	for {
		select {
		case <-d.exited:
			return nil, fmt.Errorf("the daemon exited at start: %s", strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			d.Stop()
			return nil, ctx.Err()
		default:
		}
		if time.Since(start) > 30*time.Second {
			d.Stop()
			return nil, errors.New("the daemon was not ready within 30s")
		}
		resp, err := probe.Get(d.base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				d.startDur = time.Since(start)
				return d, nil
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// Stop ends the daemon and removes its data.
func (d *daemon) Stop() {
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	os.RemoveAll(d.dir)
}

// RSS is the daemon's resident set size in bytes (0 when unknown).
func (d *daemon) RSS() uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// do sends an authenticated request and returns the status code, the body
// read to the end.
func (d *daemon) do(ctx context.Context, method, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+masterKey)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// heapInUse reads go_memstats_heap_inuse_bytes from the daemon's /metrics
// (0 when absent).
func (d *daemon) heapInUse(ctx context.Context) uint64 {
	code, body, err := d.do(ctx, http.MethodGet, "/metrics")
	if err != nil || code != http.StatusOK {
		return 0
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return uint64(f)
		}
	}
	return 0
}
