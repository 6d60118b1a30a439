package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
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

// runDaemon runs the API and/or the worker until ctx ends, then shuts down
// in order: stop taking requests and finish those in flight, stop the
// command service, release the lease, drain NATS, stop the embedded server.
func runDaemon(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr).With("replica", cfg.replicaID)

	var keys *httpapi.Keyring
	if cfg.api {
		if keys, err = loadKeyring(cfg, stdout, log); err != nil {
			return err
		}
	}
	// Take the HTTP port first: a replica that cannot serve should not join
	// the fleet, not even briefly.
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("BETASYNC_HTTP_ADDR=%q: %w", cfg.httpAddr, err)
	}
	defer ln.Close() // for early returns; Shutdown closes it otherwise

	natsURL := cfg.natsURL
	if natsURL == "" {
		srv, err := embednats.Start(embednats.Config{Listen: cfg.natsListen, StoreDir: cfg.dataDir, Logger: log})
		if err != nil {
			return fmt.Errorf("BETASYNC_NATS_LISTEN=%q: %w", cfg.natsListen, err)
		}
		defer stopServer(srv, log)
		natsURL = srv.ClientURL()
		fmt.Fprintf(stdout, "betasync: embedded NATS at %s (JetStream in %s)\n", natsURL, cfg.dataDir)
	}
	nc, err := connect(ctx, cfg, natsURL, log)
	if err != nil {
		return err
	}
	defer drain(nc, log)

	met := metrics.New()
	//nolint:contextcheck // long-lived: the subscriber stops on Close, not with a ctx
	sub, err := subscriber.New(nc,
		subscriber.WithLogger(log.With("component", "subscriber")),
		subscriber.WithOnUpdate(func(s subscriber.Snapshot) { met.SetVersion(s.Version) }),
	)
	if err != nil {
		return fmt.Errorf("subscribing to mapping updates: %w", err)
	}
	defer sub.Close()

	var workers sync.WaitGroup
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopWorker(); workers.Wait() }()
	if cfg.worker {
		svc, err := startWorker(ctx, workerCtx, cfg, nc, met, log, &workers)
		if err != nil {
			return err
		}
		defer func() {
			if err := svc.Stop(); err != nil {
				log.Warn("stopping the command service", "err", err)
			}
		}()
	}

	commandTimeout := cfg.fetchTimeout + 20*time.Second
	api := httpapi.Config{
		Logger:   log.With("component", "http"),
		Observer: met,
		Metrics:  met.Handler(),
		Ready: func(context.Context) error {
			if !nc.IsConnected() {
				return betasync.Errorf(betasync.EUNAVAILABLE, "not connected to NATS (%s)", nc.Status())
			}
			return nil
		},
	}
	if cfg.api {
		client := publisher.NewClient(nc)
		api.Commands = client
		api.Ready = client.Ping
		api.Mapping = sub
		api.Keys = keys
		api.CommandTimeout = commandTimeout
	}
	httpSrv := &http.Server{
		Handler:           httpapi.NewServer(api),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      commandTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	if cfg.api {
		fmt.Fprintf(stdout, "betasync: admin API at http://%s\n", ln.Addr())
	} else {
		fmt.Fprintf(stdout, "betasync: worker only; health and metrics at http://%s\n", ln.Addr())
	}
	log.Info("ready", "http", ln.Addr().String(), "nats", natsURL, "version", version, "mapping_version", sub.Current().Version)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("admin API: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdown)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		log.Warn("admin API shutdown: requests still in flight were cut off", "err", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin API: %w", err)
	}
	return nil
}

// startWorker ensures the buckets, starts the worker's Run on workers, and
// serves its commands.
func startWorker(ctx, workerCtx context.Context, cfg config, nc *nats.Conn, met *metrics.Metrics, log *slog.Logger, workers *sync.WaitGroup) (*publisher.Service, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	// JetStream may still be electing leaders when the daemon starts: retry
	// within the same bound as the connection.
	deadline := time.Now().Add(cfg.connectTimeout)
	var store *kv.Store
	for {
		kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		store, err = kv.Ensure(kctx, js, kv.Config{Replicas: cfg.kvReplicas, LockTTL: cfg.lockTTL})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("creating the KV buckets (BETASYNC_KV_REPLICAS=%d) within BETASYNC_NATS_CONNECT_TIMEOUT (%s): %w", cfg.kvReplicas, cfg.connectTimeout, err)
		}
		log.Warn("KV buckets not ready yet; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	w, err := worker.New(worker.Config{
		ReplicaID:     cfg.replicaID,
		URL:           cfg.url,
		LocalOnly:     cfg.localOnly,
		LocalFile:     cfg.localFile,
		FetchTimeout:  cfg.fetchTimeout,
		CheckInterval: cfg.checkInterval,
		UserAgent:     "betasync/" + version + " (+https://github.com/betasync/betasync)",
		Logger:        log.With("component", "worker"),
	}, worker.Deps{
		Mappings:  store.Mappings,
		Schedules: store.Schedules,
		Lease:     store.Lease,
		Announce: func(ctx context.Context, env betasync.Envelope) error {
			return publisher.Announce(ctx, nc, env)
		},
		Metrics: met,
	})
	if err != nil {
		return nil, fmt.Errorf("LITELLM_ANTHROPIC_BETA_HEADERS_URL / BETASYNC_LOCAL_CONFIG: %w", err)
	}
	workers.Go(func() {
		if err := w.Run(workerCtx); err != nil {
			log.Error("worker stopped", "err", err)
		}
	})
	//nolint:contextcheck // long-lived: each command gets its own timeout; the service stops on Stop
	svc, err := publisher.Serve(nc, w, publisher.ServiceConfig{
		Version:   serviceVersion(),
		ReplicaID: cfg.replicaID,
		Timeout:   cfg.fetchTimeout + 15*time.Second,
		Logger:    log.With("component", "service"),
	})
	if err != nil {
		return nil, fmt.Errorf("starting the betasync micro service: %w", err)
	}
	return svc, nil
}

// loadKeyring builds the API keys. With none configured, it generates a
// master key and prints it once, so the daemon never runs open.
func loadKeyring(cfg config, stdout io.Writer, log *slog.Logger) (*httpapi.Keyring, error) {
	var keys []httpapi.Key
	if cfg.keysFile != "" {
		var err error
		if keys, err = httpapi.LoadKeys(cfg.keysFile); err != nil {
			return nil, fmt.Errorf("BETASYNC_KEYS_FILE: %w", err)
		}
	}
	master := cfg.masterKey
	if master == "" && len(keys) == 0 {
		var b [24]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		master = "sk-" + base64.RawURLEncoding.EncodeToString(b[:])
		fmt.Fprintf(stdout, "betasync: LITELLM_MASTER_KEY is not set; this run's master key is %s\n", master)
		log.Warn("no API key configured: generated a master key for this run and printed it on stdout")
	}
	kr, err := httpapi.NewKeyring(master, keys)
	if err != nil {
		return nil, fmt.Errorf("BETASYNC_KEYS_FILE: %w", err)
	}
	if master == "" && !slices.ContainsFunc(keys, func(k httpapi.Key) bool { return k.Role == httpapi.RoleAdmin }) {
		log.Warn("no admin key: no LITELLM_MASTER_KEY and no admin key in BETASYNC_KEYS_FILE; reloads and schedules are only possible over NATS")
	}
	return kr, nil
}

// connect dials NATS, retrying until BETASYNC_NATS_CONNECT_TIMEOUT, then
// reconnects forever.
func connect(ctx context.Context, cfg config, url string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("betasync " + cfg.replicaID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// Fail writes while disconnected instead of replaying them later:
		// a lease renewal or KV write that already timed out must not land
		// after the fact.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS error", "subject", subject, "err", err)
		}),
	}
	if cfg.natsUser != "" {
		opts = append(opts, nats.UserInfo(cfg.natsUser, cfg.natsPassword))
	}
	if cfg.natsToken != "" {
		opts = append(opts, nats.Token(cfg.natsToken))
	}
	if cfg.natsCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.natsCreds))
	}
	if cfg.natsCA != "" {
		opts = append(opts, nats.RootCAs(cfg.natsCA))
	}
	if cfg.natsCert != "" {
		opts = append(opts, nats.ClientCert(cfg.natsCert, cfg.natsKey))
	}
	deadline := time.Now().Add(cfg.connectTimeout)
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("NATS_URL=%q: cannot connect within BETASYNC_NATS_CONNECT_TIMEOUT (%s): %w", redact(url), cfg.connectTimeout, err)
		}
		log.Warn("NATS not reachable yet; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// redact hides passwords in a (comma-separated) NATS URL.
func redact(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

func drain(nc *nats.Conn, log *slog.Logger) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		log.Warn("draining NATS", "err", err)
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		nc.Close()
	}
}

func stopServer(srv *server.Server, log *slog.Logger) {
	srv.Shutdown()
	srv.WaitForShutdown()
	log.Info("embedded NATS stopped")
}

// serviceVersion is the micro service version: semver required.
func serviceVersion() string {
	if _, err := fmt.Sscanf(version, "%d.%d.%d", new(int), new(int), new(int)); err != nil {
		return "0.0.0"
	}
	return version
}
