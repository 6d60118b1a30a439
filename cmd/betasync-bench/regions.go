package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/betasync/betasync/subscriber"
)

// regionsRow runs the regional topology: a hub cluster of three servers
// with JetStream, two leaf-node servers (regions) without it, the daemon on
// the hub and the pods on the leaves, half on each; the baseline's publish
// goes to the hub too, so it crosses the same leaf connections.
func regionsRow(ctx context.Context, t *table, bin string, up *upstream, n, rounds int) error {
	dir, err := os.MkdirTemp("", "betasync-bench-regions-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hub, leaves, err := startRegions(dir) //nolint:contextcheck // bounded by its own 60 s deadline
	defer func() {
		for _, s := range append(hub, leaves...) {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}()
	if err != nil {
		return err
	}
	var hubURLs []string
	for _, s := range hub {
		hubURLs = append(hubURLs, s.ClientURL())
	}
	d, err := startDaemon(ctx, bin, up, "", "NATS_URL="+strings.Join(hubURLs, ","), "BETASYNC_KV_REPLICAS=3")
	if err != nil {
		return err
	}
	defer d.Stop()
	var leafURLs []string
	for _, s := range leaves {
		leafURLs = append(leafURLs, s.ClientURL())
	}
	// Every pod has read the stored version from KV, through its leaf and
	// the hub's JetStream domain, before the rounds start (fleetRows waits
	// for each to be ready): the path a pod takes to catch up after an
	// outage.
	return fleetRows(ctx, t, d, up, n, rounds, leafURLs, ", 2 leaf nodes of a 3-node hub",
		subscriber.WithJetStreamDomain(hubDomain))
}

// hubDomain is the hub's JetStream domain; the leaves have no JetStream.
const hubDomain = "hub"

// startRegions starts the hub cluster and the leaves and waits until the
// hub has elected a JetStream meta leader and each leaf is connected.
func startRegions(dir string) (hub, leaves []*server.Server, err error) {
	const size = 3
	routePorts, leafPorts := make([]int, size), make([]int, size)
	var routes, remotes []string
	for i := range size {
		if routePorts[i], err = freePort(); err != nil {
			return nil, nil, err
		}
		if leafPorts[i], err = freePort(); err != nil {
			return nil, nil, err
		}
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		remotes = append(remotes, fmt.Sprintf("nats://127.0.0.1:%d", leafPorts[i]))
	}
	for i := range size {
		s, err := startServer(&server.Options{
			ServerName:      fmt.Sprintf("hub-%d", i+1),
			Host:            "127.0.0.1",
			Port:            -1,
			JetStream:       true,
			JetStreamDomain: hubDomain,
			StoreDir:        fmt.Sprintf("%s/hub-%d", dir, i+1),
			NoSigs:          true,
			Cluster:         server.ClusterOpts{Name: "hub", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:          server.RoutesFromStr(strings.Join(routes, ",")),
			LeafNode:        server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPorts[i]},
		})
		if s != nil {
			hub = append(hub, s)
		}
		if err != nil {
			return hub, nil, err
		}
	}
	urls := server.RoutesFromStr(strings.Join(remotes, ","))
	for i := range 2 {
		s, err := startServer(&server.Options{
			ServerName: fmt.Sprintf("region-%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			NoSigs:     true,
			LeafNode:   server.LeafNodeOpts{Remotes: []*server.RemoteLeafOpts{{URLs: urls}}},
		})
		if s != nil {
			leaves = append(leaves, s)
		}
		if err != nil {
			return hub, leaves, err
		}
	}
	nc, err := nats.Connect(hub[0].ClientURL())
	if err != nil {
		return hub, leaves, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return hub, leaves, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ready := true
		for _, s := range hub {
			ready = ready && s.NumRoutes() >= size-1
		}
		for _, s := range leaves {
			ready = ready && s.NumLeafNodes() >= 1
		}
		if ready {
			actx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := js.AccountInfo(actx)
			cancel()
			if err == nil {
				return hub, leaves, nil
			}
		}
		if time.Now().After(deadline) {
			return hub, leaves, errors.New("the hub cluster did not elect a JetStream meta leader, or a leaf did not connect, within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
