package subscriberprom_test

import (
	"log"
	"net/http"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/betasync/betasync/subscriber"
	"github.com/betasync/betasync/subscriber/subscriberprom"
)

// A pod exports its subscriber's state and Stats() on its own /metrics:
// register one collector on the pod's registry; it reads the subscriber at
// each scrape. (The README's "Embedding the subscriber" section quotes
// this; TestCollectorExportsTheSubscriber scrapes it against a real
// server.)
func Example() {
	nc, err := nats.Connect(os.Getenv("NATS_URL"), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	sub, err := subscriber.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	reg := prometheus.NewRegistry() // or prometheus.DefaultRegisterer, served by promhttp.Handler()
	reg.MustRegister(subscriberprom.New(sub))
	mux := http.NewServeMux() // the pod's own mux
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
