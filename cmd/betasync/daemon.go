package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/embednats"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/metrics"
	"github.com/betasync/betasync/publisher"
	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/worker"
)

// daemon is one replica: the parts runDaemon starts, in order, and the steps
// that stop them, run in reverse.
type daemon struct {
	cfg    config
	log    *slog.Logger
	stdout io.Writer

	keys  *httpapi.Keyring       // API replicas only
	ln    net.Listener           // the admin API's port
	url   string                 // the NATS to join (the embedded one's without NATS_URL)
	nc    *nats.Conn             // the replica's one connection
	met   *metrics.Metrics       // what this replica did
	sub   *subscriber.Subscriber // the version this replica serves
	serve chan error             // the admin API's Serve result

	stops []func(context.Context) // undo the started steps, last first, within BETASYNC_SHUTDOWN_TIMEOUT
}

// runDaemon runs the API and/or the worker until ctx ends, then shuts down
// in reverse order: stop taking requests and finish those in flight, stop
// the command service, stop the worker (releasing the lease), close the
// subscriber, drain NATS, stop the embedded server.
func runDaemon(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	d := &daemon{cfg: cfg, log: newLogger(cfg, stderr).With("replica", cfg.replicaID), stdout: stdout, met: metrics.New()}
	ver, rev, _ := buildInfo()
	d.met.SetBuildInfo(ver, rev, runtime.Version())
	defer d.stop(ctx)
	for _, step := range []func(context.Context) error{
		d.loadKeys,    // API replicas: never start without a key
		d.listen,      // take the HTTP port first: a replica that cannot serve must not join
		d.startNATS,   // the embedded server, unless NATS_URL is set
		d.connect,     // one connection for everything
		d.subscribe,   // the version this replica serves
		d.startWorker, // worker replicas: buckets, the worker, the command service
		d.serveHTTP,   // the admin API (or health and metrics only)
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	d.log.Info("ready", "http", d.ln.Addr().String(), "nats", redact(d.url), "version", version, "mapping_version", d.sub.Current().Version)
	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
		return nil
	case err := <-d.serve:
		return fmt.Errorf("admin API: %w", err)
	}
}

// onStop registers the undo of a started step.
func (d *daemon) onStop(fn func(context.Context)) { d.stops = append(d.stops, fn) }

// stop undoes the started steps, last first, within
// BETASYNC_SHUTDOWN_TIMEOUT in all (Kubernetes gives 30 s by default before
// it kills): requests and commands still in flight when it runs out are cut
// off, and their callers retry on another replica.
func (d *daemon) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.shutdown)
	defer cancel()
	for _, fn := range slices.Backward(d.stops) {
		fn(ctx)
	}
}

// loadKeys builds the API keys. With none configured, it generates a master
// key and prints it once, so the daemon never runs open.
func (d *daemon) loadKeys(context.Context) error {
	if !d.cfg.api {
		return nil
	}
	var keys []httpapi.Key
	if d.cfg.keysFile != "" {
		var err error
		if keys, err = httpapi.LoadKeys(d.cfg.keysFile); err != nil {
			return fmt.Errorf("BETASYNC_KEYS_FILE: %w", err)
		}
	}
	master := d.cfg.masterKey
	if master == "" && len(keys) == 0 {
		var b [24]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		master = "sk-" + base64.RawURLEncoding.EncodeToString(b[:])
		fmt.Fprintf(d.stdout, "betasync: LITELLM_MASTER_KEY is not set; this run's master key is %s\n", master)
		d.log.Warn("no API key configured: generated a master key for this run and printed it on stdout")
	}
	kr, err := httpapi.NewKeyring(master, keys)
	if err != nil {
		return fmt.Errorf("BETASYNC_KEYS_FILE: %w", err)
	}
	if master == "" && !slices.ContainsFunc(keys, func(k httpapi.Key) bool { return k.Role == httpapi.RoleAdmin || k.Role == httpapi.RoleProxyAdmin }) {
		d.log.Warn("no admin key: no LITELLM_MASTER_KEY and no admin key in BETASYNC_KEYS_FILE; reloads and schedules are only possible over NATS")
	}
	d.keys = kr
	return nil
}

func (d *daemon) listen(context.Context) error {
	ln, err := net.Listen("tcp", d.cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("BETASYNC_HTTP_ADDR=%q: %w", d.cfg.httpAddr, err)
	}
	d.ln = ln
	d.onStop(func(context.Context) { _ = ln.Close() }) // Shutdown has closed it, unless serving never started
	return nil
}

func (d *daemon) startNATS(context.Context) error {
	d.url = d.cfg.natsURL
	if d.url != "" {
		return nil
	}
	srv, err := embednats.Start(embednats.Config{Listen: d.cfg.natsListen, StoreDir: d.cfg.dataDir, Logger: d.log})
	if err != nil {
		return fmt.Errorf("BETASYNC_NATS_LISTEN=%q: %w", d.cfg.natsListen, err)
	}
	d.onStop(func(ctx context.Context) { stopServer(ctx, srv, d.log) })
	d.url = srv.ClientURL()
	d.log.Info("embedded NATS server started", "url", d.url, "jetstream_dir", d.cfg.dataDir)
	return nil
}

func (d *daemon) connect(ctx context.Context) error {
	nc, err := connect(ctx, d.cfg, d.url, d.log)
	if err != nil {
		return err
	}
	d.nc = nc
	d.met.WatchNATS(nc.IsConnected)
	d.onStop(func(context.Context) { drain(nc, d.log) })
	return nil
}

func (d *daemon) subscribe(context.Context) error {
	//nolint:contextcheck // long-lived: the subscriber stops on Close, not with a ctx
	sub, err := subscriber.New(d.nc,
		subscriber.WithVerifier(d.cfg.verifier),
		subscriber.WithLogger(d.log.With("component", "subscriber")),
		subscriber.WithPodID(d.cfg.replicaID), // in the fleet view too
		subscriber.WithOnUpdate(func(s *betasync.Snapshot) { d.met.SetVersion(s.Version) }),
	)
	if err != nil {
		return fmt.Errorf("subscribing to mapping updates: %w", err)
	}
	d.sub = sub
	d.onStop(func(context.Context) { sub.Close() })
	return nil
}

// startWorker ensures the buckets, runs the worker, and serves the
// commands, on worker replicas.
func (d *daemon) startWorker(ctx context.Context) error {
	if !d.cfg.worker {
		return nil
	}
	store, err := d.ensureBuckets(ctx)
	if err != nil {
		return err
	}
	w, err := d.newWorker(store)
	if err != nil {
		return err
	}
	// The worker outlives ctx: it stops when its step is undone, after the
	// command service, so commands in flight finish first.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil {
			d.log.Error("worker stopped", "err", err)
		}
	}()
	d.onStop(func(ctx context.Context) {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			d.log.Warn("the worker did not stop within BETASYNC_SHUTDOWN_TIMEOUT; the lease expires after its TTL")
		}
	})

	//nolint:contextcheck // long-lived: each command gets its own timeout; the service stops on Stop
	svc, err := publisher.Serve(d.nc, w, publisher.ServiceConfig{
		Version:   serviceVersion(),
		ReplicaID: d.cfg.replicaID,
		Timeout:   d.cfg.fetchTimeout + 15*time.Second,
		Logger:    d.log.With("component", "service"),
	})
	if err != nil {
		return fmt.Errorf("starting the betasync micro service: %w", err)
	}
	d.onStop(func(ctx context.Context) {
		if err := svc.Shutdown(ctx); err != nil {
			d.log.Warn("stopping the command service", "err", err)
		}
	})
	return nil
}

// newWorker builds the worker on store: it announces on the replica's
// connection, hands each version to the replica's own subscriber, and asks
// the pods for the fleet view.
func (d *daemon) newWorker(store *kv.Store) (*worker.Worker, error) {
	w, err := worker.New(worker.Config{
		ReplicaID:     d.cfg.replicaID,
		URL:           d.cfg.url,
		LocalOnly:     d.cfg.localOnly,
		LocalFile:     d.cfg.localFile,
		FetchTimeout:  d.cfg.fetchTimeout,
		CheckInterval: d.cfg.checkInterval,
		FleetWindow:   d.cfg.fleetWindow,
		UserAgent:     "betasync/" + version + " (+https://github.com/betasync/betasync)",
		Logger:        d.log.With("component", "worker"),
	}, worker.Deps{
		Store: store,
		Announce: func(ctx context.Context, snap *betasync.Snapshot) error {
			// The fleet first: the announcement waits on nothing in this
			// process. Then this process's own subscriber, at once and
			// without decoding the version a second time.
			err := publisher.Announce(ctx, d.nc, snap)
			d.sub.Offer(snap)
			return err
		},
		Metrics: d.met,
		Beacon: func(version uint64, hash string) error {
			return publisher.PublishBeacon(d.nc, version, hash)
		},
		Fleet: func(ctx context.Context) ([]betasync.PodStatus, error) {
			return publisher.Fleet(ctx, d.nc, d.cfg.fleetWindow)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("LITELLM_ANTHROPIC_BETA_HEADERS_URL / BETASYNC_LOCAL_CONFIG: %w", err)
	}
	return w, nil
}

// ensureBuckets creates or updates the KV buckets. JetStream may still be
// electing leaders when the daemon starts: it retries within the same bound
// as the connection.
func (d *daemon) ensureBuckets(ctx context.Context) (*kv.Store, error) {
	js, err := jetstream.New(d.nc)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(d.cfg.connectTimeout)
	for {
		kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		store, err := kv.Ensure(kctx, js, kv.Config{
			Replicas: d.cfg.kvReplicas, History: d.cfg.history, LockTTL: d.cfg.lockTTL,
			Signer: d.cfg.signer, Verifier: d.cfg.verifier,
		})
		cancel()
		if err == nil {
			return store, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("creating the KV buckets (BETASYNC_KV_REPLICAS=%d) within BETASYNC_NATS_CONNECT_TIMEOUT (%s): %w", d.cfg.kvReplicas, d.cfg.connectTimeout, err)
		}
		d.log.Warn("KV buckets not ready yet; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// serveHTTP serves the admin API on an API replica, and health and metrics
// on a worker-only one.
func (d *daemon) serveHTTP(ctx context.Context) error {
	commandTimeout := d.cfg.fetchTimeout + 20*time.Second
	api := httpapi.Config{
		Logger:   d.log.With("component", "http"),
		Observer: d.met,
		Metrics:  d.met.Handler(),
		Ready:    d.ready,
	}
	if d.cfg.api {
		api.Commands, api.Mapping, api.Keys = publisher.NewClient(d.nc), d.sub, d.keys
		api.CommandTimeout = commandTimeout
		api.StatusFallback = d.readStatus
		api.PublicConfig = d.cfg.publicConfig
		api.AuthLimits.TrustedProxies = d.cfg.trustedProxies
	}
	srv := httpapi.NewHTTPServer(httpapi.NewServer(api), commandTimeout, d.log)
	d.serve = make(chan error, 1)
	go func() { d.serve <- srv.Serve(d.ln) }()
	d.onStop(func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
			d.log.Warn("admin API shutdown: requests still in flight were cut off", "err", err)
		}
	})
	// One log stream: stdout carries only a generated master key.
	if d.cfg.api {
		d.log.Info("admin API listening", "url", "http://"+d.ln.Addr().String())
	} else {
		d.log.Info("worker only: health and metrics listening", "url", "http://"+d.ln.Addr().String())
	}
	return nil
}

// ready answers /readyz: NATS is connected, the KV buckets answer (their
// stream leaders are elected), and, on an API replica, a worker answers.
func (d *daemon) ready(ctx context.Context) error {
	if !d.nc.IsConnected() {
		return betasync.Errorf(betasync.EUNAVAILABLE, "not connected to NATS (%s)", d.nc.Status())
	}
	js, err := jetstream.New(d.nc)
	if err != nil {
		return betasync.Errorf(betasync.EUNAVAILABLE, "JetStream: %v", err)
	}
	if err := kv.Check(ctx, js); err != nil {
		return err
	}
	if d.cfg.api {
		return publisher.NewClient(d.nc).Ping(ctx)
	}
	return nil
}

func stopServer(ctx context.Context, srv *server.Server, log *slog.Logger) {
	srv.Shutdown()
	stopped := make(chan struct{})
	go func() { srv.WaitForShutdown(); close(stopped) }()
	select {
	case <-stopped:
		log.Info("embedded NATS stopped")
	case <-ctx.Done():
		log.Warn("the embedded NATS server did not stop within BETASYNC_SHUTDOWN_TIMEOUT")
	}
}

// serviceVersion is the micro service version: semver required.
func serviceVersion() string {
	if _, err := fmt.Sscanf(version, "%d.%d.%d", new(int), new(int), new(int)); err != nil {
		return "0.0.0"
	}
	return version
}

// readStatus reads the schedule status from KV, for an API replica that no
// worker answers.
func (d *daemon) readStatus(ctx context.Context) (betasync.ScheduleStatus, error) {
	js, err := jetstream.New(d.nc)
	if err != nil {
		return betasync.ScheduleStatus{}, err
	}
	return worker.StatusFromKV(ctx, js, d.cfg.verifier)
}
