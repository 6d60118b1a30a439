package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/betasync/betasync/subscriber"
)

// outageBeacon is the daemon's check interval in the outage row, and so its
// beacon interval (10 s by default; shorter here so that rounds are short).
const outageBeacon = time.Second

// outageRow times how pods behind a leaf node catch up after the leaf has
// lost its hub: one hub server with JetStream (domain hub) and the daemon,
// one leaf whose link to the hub runs through a proxy that can cut it, and
// n pods on the leaf, each on its own connection. Each round cuts the link,
// reloads a new document (stored and announced while the pods are cut
// off, so they miss the announcement), restores the link, and times until
// every pod holds the new version, which only a read from KV can give
// them. The baseline, from the same round, is the time until the leaf link
// is back.
func outageRow(ctx context.Context, t *table, bin string, up *upstream, n, rounds int) error {
	dir, err := os.MkdirTemp("", "betasync-bench-outage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	leafPort, err := freePort()
	if err != nil {
		return err
	}
	hub, err := startServer(&server.Options{
		ServerName: "hub", Host: "127.0.0.1", Port: -1, NoSigs: true,
		JetStream: true, JetStreamDomain: hubDomain, StoreDir: dir + "/hub",
		// NoAdvertise: the leaf must not learn the hub's own address and
		// reconnect around the proxy.
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort, NoAdvertise: true},
	})
	if hub != nil {
		defer func() { hub.Shutdown(); hub.WaitForShutdown() }()
	}
	if err != nil {
		return err
	}
	link, err := newLink(fmt.Sprintf("127.0.0.1:%d", leafPort))
	if err != nil {
		return err
	}
	defer link.Close()
	leaf, err := startServer(&server.Options{
		ServerName: "region", Host: "127.0.0.1", Port: -1, NoSigs: true,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 100 * time.Millisecond,
			Remotes:           []*server.RemoteLeafOpts{{URLs: server.RoutesFromStr("nats://" + link.Addr())}},
		},
	})
	if leaf != nil {
		defer func() { leaf.Shutdown(); leaf.WaitForShutdown() }()
	}
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, func() bool { return leaf.NumLeafNodes() == 1 }); err != nil {
		return fmt.Errorf("the leaf did not connect: %w", err)
	}
	d, err := startDaemon(ctx, bin, up, "", "NATS_URL="+hub.ClientURL(), "BETASYNC_CHECK_INTERVAL="+outageBeacon.String())
	if err != nil {
		return err
	}
	defer d.Stop()

	subs := make([]*subscriber.Subscriber, n)
	conns := make([]*nats.Conn, n)
	defer func() {
		for i := range subs {
			if subs[i] != nil {
				subs[i].Close()
			}
			if conns[i] != nil {
				conns[i].Close()
			}
		}
	}()
	if err := parallel(n, 32, func(i int) error {
		nc, err := nats.Connect(leaf.ClientURL(), nats.Name(fmt.Sprintf("bench-outage-pod-%d", i)), nats.MaxReconnects(-1))
		if err != nil {
			return err
		}
		conns[i] = nc
		s, err := subscriber.New(nc, subscriber.WithJetStreamDomain(hubDomain), subscriber.WithPodID(fmt.Sprintf("outage-%d", i))) //nolint:contextcheck // stops on Close
		if err != nil {
			return err
		}
		subs[i] = s
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return s.WaitReady(wctx)
	}); err != nil {
		return fmt.Errorf("starting the pods behind the leaf: %w", err)
	}

	var catchUp, linkBack, after []time.Duration
	for range rounds {
		// Outages a second or more apart (a pod reads KV for beacons at
		// most once a second, and the last round's catch-up was one), at a
		// random phase of the beacon: a round that starts right after a
		// catch-up would start at the same point of the beacon's period
		// every time.
		time.Sleep(time.Second + rand.N(outageBeacon))
		link.Cut()
		if err := waitUntil(ctx, func() bool { return leaf.NumLeafNodes() == 0 && hub.NumLeafNodes() == 0 }); err != nil {
			return fmt.Errorf("cutting the leaf link: %w", err)
		}
		up.next()
		code, body, err := d.do(ctx, http.MethodPost, "/reload/anthropic_beta_headers")
		if err != nil {
			return err
		}
		var res struct {
			Version uint64 `json:"version"`
			Changed bool   `json:"changed"`
		}
		if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || !res.Changed {
			return fmt.Errorf("reload: %d %s", code, body)
		}
		for i, s := range subs {
			if s.Current().Version >= res.Version {
				return fmt.Errorf("pod %d got version %d across a cut link", i, res.Version)
			}
		}
		t0 := time.Now()
		link.Restore()
		if err := waitUntil(ctx, func() bool { return leaf.NumLeafNodes() == 1 }); err != nil {
			return fmt.Errorf("restoring the leaf link: %w", err)
		}
		back := time.Since(t0)
		if err := waitUntil(ctx, func() bool {
			for _, s := range subs {
				if s.Current().Version < res.Version {
					return false
				}
			}
			return true
		}); err != nil {
			return fmt.Errorf("version %d did not reach every pod behind the leaf: %w", res.Version, err)
		}
		all := time.Since(t0)
		catchUp, linkBack, after = append(catchUp, all), append(linkBack, back), append(after, all-back)
	}
	slack := outageBeacon + 250*time.Millisecond
	t.add(row{
		name:     fmt.Sprintf("leaf outage catch-up, %d pods behind the leaf", n),
		measured: fmt.Sprintf("every pod on the missed version p50 %s, max %s after the link returns", ms(quantile(catchUp, .5)), ms(quantile(catchUp, 1))),
		baseline: fmt.Sprintf("leaf link back p50 %s, max %s", ms(quantile(linkBack, .5)), ms(quantile(linkBack, 1))),
		ratio:    ratio(float64(quantile(catchUp, .5)), float64(quantile(linkBack, .5))),
		target:   fmt.Sprintf("<= link back + %s beacon + 250 ms", outageBeacon),
		met:      yes(quantile(after, 1) <= slack),
	})
	return nil
}

// startServer starts an in-process NATS server and waits until it accepts
// connections.
func startServer(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		return s, fmt.Errorf("%s not ready", opts.ServerName)
	}
	return s, nil
}

// waitUntil polls cond every millisecond for up to 60 s.
func waitUntil(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("not within 60s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// link is a TCP proxy that can be cut, as a network partition would: Cut
// closes every connection and refuses new ones until Restore.
type link struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newLink(target string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{ln: ln, target: target}
	l.wg.Go(l.accept)
	return l, nil
}

func (l *link) Addr() string { return l.ln.Addr().String() }

func (l *link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		if l.down.Load() {
			_ = c.Close()
			continue
		}
		u, err := net.Dial("tcp", l.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		l.conns = append(l.conns, c, u)
		l.mu.Unlock()
		l.wg.Go(func() { _, _ = io.Copy(u, c); _ = u.Close() })
		l.wg.Go(func() { _, _ = io.Copy(c, u); _ = c.Close() })
	}
}

func (l *link) Cut() {
	l.down.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

func (l *link) Restore() { l.down.Store(false) }

func (l *link) Close() {
	_ = l.ln.Close()
	l.Cut()
	l.wg.Wait()
}
