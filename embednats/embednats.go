// Package embednats runs a nats-server with JetStream inside the process, so
// one command runs betasync on one machine, and tests get a real server.
package embednats

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config describes the embedded server.
type Config struct {
	// Listen is host:port for clients; port -1 picks a free port.
	Listen string
	// StoreDir is JetStream's directory; it is created if missing.
	StoreDir string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept clients.
	ReadyTimeout time.Duration
	// MaxPayload is the message size limit; MaxPayload (4 MiB) when 0.
	MaxPayload int32
	// PingInterval is how often the server pings each client; after
	// MaxPingsOut unanswered pings it drops the client. A stalled client
	// (a SIGSTOPped worker) thus leaves its queue groups within about
	// 3*PingInterval, instead of NATS's default of minutes. PingInterval
	// when 0.
	PingInterval time.Duration
}

// Liveness defaults: a client that answers no ping for 2 intervals (plus
// one for the ping in flight) is dropped, about 15 s.
const (
	PingInterval = 5 * time.Second
	MaxPingsOut  = 2
)

// MaxPayload is the embedded server's message size limit: room for a
// maximum-size mapping plus its envelope.
const MaxPayload = 4 << 20

// Start runs the server and waits until it accepts clients. Stop it with
// Shutdown and WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embednats: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embednats: listen port %q: %w", portStr, err)
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("embednats: store dir: %w", err)
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = MaxPayload
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = PingInterval
	}
	opts := &server.Options{
		PingInterval: cfg.PingInterval,
		MaxPingsOut:  MaxPingsOut,
		ServerName:   "betasync-embedded",
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     cfg.StoreDir,
		MaxPayload:   cfg.MaxPayload,
		NoSigs:       true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embednats: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The server reports a failure to listen (a port in use) through
	// Fatalf, and then never becomes ready: catch it to fail at once.
	fatal := make(chan string, 1)
	srv.SetLoggerV2(logAdapter{l: logger.With("component", "nats-server"), fatal: fatal}, false, false, false)
	srv.Start()
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-fatal:
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embednats: %s", msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embednats: server not ready for connections within %s", cfg.ReadyTimeout)
		}
	}
	return srv, nil
}

// logAdapter sends the server's printf-style logs to slog.
type logAdapter struct {
	l     *slog.Logger
	fatal chan<- string // the first fatal message
}

// Noticef is the server's chatter (banner, settings): DEBUG, so the daemon's
// log stays one stream of its own lines; warnings and errors are kept.
func (a logAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a logAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.l.Error(msg)
	select {
	case a.fatal <- msg:
	default:
	}
}
func (a logAdapter) Errorf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a logAdapter) Debugf(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a logAdapter) Tracef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
