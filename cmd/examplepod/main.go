// Command examplepod is a minimal LLM-proxy pod that embeds the betasync
// subscriber: GET /filter?provider=P with an anthropic-beta header answers
// what the pod would send to provider P, and the mapping version it used.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/httpapi"
	"github.com/betasync/betasync/subscriber"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "examplepod:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	url := getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	addr := getenv("POD_HTTP_ADDR")
	if addr == "" {
		addr = ":8080"
	}

	// The pod owns its connection; the subscriber only uses it.
	nc, err := nats.Connect(url,
		nats.Name("examplepod"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("NATS_URL=%q: %w", url, err)
	}
	defer nc.Close()

	opts := []subscriber.Option{subscriber.WithLogger(log)}
	if id := getenv("POD_ID"); id != "" {
		opts = append(opts, subscriber.WithPodID(id)) // its name in the fleet view; default <hostname>-<pid>
	}
	if keys := getenv("BETASYNC_TRUSTED_KEYS"); keys != "" {
		v, err := betasync.NewVerifier(strings.Split(keys, ",")...)
		if err != nil {
			return fmt.Errorf("BETASYNC_TRUSTED_KEYS: %w", err)
		}
		opts = append(opts, subscriber.WithVerifier(v)) // apply only versions signed by these keys
	}
	sub, err := subscriber.New(nc, opts...) //nolint:contextcheck // stops on Close
	if err != nil {
		return err
	}
	defer sub.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("POD_HTTP_ADDR=%q: %w", addr, err)
	}
	// The same limits as the admin API: bounded headers, bodies and
	// times, and no path that a proxy in front would read otherwise.
	srv := httpapi.NewHTTPServer(newHandler(sub), 5*time.Second, log)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "examplepod: listening on http://%s\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err := <-done:
		return err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// filterResponse is what the pod would send upstream.
type filterResponse struct {
	Provider      string   `json:"provider"`
	AnthropicBeta string   `json:"anthropic_beta"` // the header value; "" means the header is dropped
	Betas         []string `json:"betas"`
	Version       uint64   `json:"version"`
	Hash          string   `json:"hash"`
	Source        string   `json:"source"`
}

func newHandler(sub *subscriber.Subscriber) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /filter", func(w http.ResponseWriter, r *http.Request) {
		provider := r.URL.Query().Get("provider")
		if provider == "" {
			http.Error(w, `{"error":{"message":"provider is required"}}`, http.StatusBadRequest)
			return
		}
		cur := sub.Current() // one atomic load: the whole request uses one version
		betas := cur.Betas(provider, r.Header.Values(betasync.HeaderName)...)
		if betas == nil {
			betas = []string{}
		}
		writeJSON(w, filterResponse{
			Provider:      provider,
			AnthropicBeta: strings.Join(betas, ","),
			Betas:         betas,
			Version:       cur.Version,
			Hash:          cur.Hash(),
			Source:        cur.Source,
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !sub.Ready() {
			http.Error(w, `{"status":"waiting for a mapping from NATS"}`, http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{"status": "ready", "version": sub.Current().Version})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
