package worker

import (
	"context"

	"github.com/betasync/betasync"
)

// Fleet asks every pod for its status through the injected collector and
// summarises the answers.
func (w *Worker) Fleet(ctx context.Context) (betasync.FleetView, error) {
	if w.fleet == nil {
		return betasync.FleetView{}, betasync.Errorf(betasync.EUNAVAILABLE, "the fleet view is not configured on replica %s", w.cfg.ReplicaID)
	}
	pods, err := w.fleet(ctx)
	if err != nil {
		return betasync.FleetView{}, err
	}
	window := w.cfg.FleetWindow
	if window <= 0 {
		window = betasync.DefaultFleetWindow
	}
	return betasync.NewFleetView(pods, window, w.now()), nil
}
