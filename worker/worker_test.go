package worker_test

import (
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/worker"
)

func TestNewValidatesConfig(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	deps := worker.Deps{
		Mappings:  n.store.Mappings,
		Schedules: n.store.Schedules,
		Lease:     n.store.Lease,
		Announce:  func(t interface{ Deadline() (time.Time, bool) }) {}, // replaced below
	}
	_ = deps
	valid := worker.Deps{
		Mappings:  n.store.Mappings,
		Schedules: n.store.Schedules,
		Lease:     n.store.Lease,
		Announce:  nil,
	}
	tests := []struct {
		name string
		cfg  worker.Config
		deps worker.Deps
	}{
		{name: "no replica id", cfg: worker.Config{}, deps: valid},
		{name: "no announce", cfg: worker.Config{ReplicaID: "r1"}, deps: valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := worker.New(tt.cfg, tt.deps)
			assert.Error(t, err)
		})
	}
}
