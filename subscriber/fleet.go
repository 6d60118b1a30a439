package subscriber

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/publisher"
)

// podServiceVersion is the version of the pod status protocol, shown by
// `nats micro ls` (micro wants semver).
const podServiceVersion = "1.0.0"

// WithPodID names this pod in the fleet view; the default is
// <hostname>-<pid>. Several subscribers in one process need distinct ids.
func WithPodID(id string) Option { return func(s *Subscriber) { s.podID = id } }

// WithoutFleet keeps the pod out of the fleet view: no betasync_pod micro
// service, and nothing subscribed on betasync.pod.status.
func WithoutFleet() Option { return func(s *Subscriber) { s.noFleet = true } }

// defaultPodID is <hostname>-<pid>.
func defaultPodID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "pod"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// PodID returns the id this pod answers the fleet view with.
func (s *Subscriber) PodID() string { return s.podID }

// startFleet registers the betasync_pod micro service with its status
// endpoint on betasync.pod.status, queue group disabled, so that every pod
// answers a fleet query. When connected, it returns once the server has
// the subscriptions, so the pod is visible at once.
func (s *Subscriber) startFleet() error {
	if s.noFleet {
		return nil
	}
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:    publisher.PodServiceName,
		Version: podServiceVersion,
		// The id in the description too, so `nats micro ls` (which shows
		// descriptions, not metadata) says which pod is which.
		Description: "betasync pod " + s.podID + ": the anthropic-beta mapping version this pod serves",
		Metadata:    map[string]string{"pod": s.podID},
	})
	if err != nil {
		return fmt.Errorf("subscriber: registering %s: %w", publisher.PodServiceName, err)
	}
	if err := svc.AddEndpoint("status", micro.HandlerFunc(s.serveStatus),
		micro.WithEndpointSubject(publisher.SubjectPodStatus),
		micro.WithEndpointQueueGroupDisabled()); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("subscriber: registering %s: %w", publisher.SubjectPodStatus, err)
	}
	s.svc = svc
	if s.nc.IsConnected() {
		if err := s.nc.FlushTimeout(2 * time.Second); err != nil {
			// The subscriptions are sent again on reconnect.
			s.log.Debug("flushing the fleet subscriptions", "err", err)
		}
	}
	return nil
}

// stopFleet stops the micro service, if any. micro drains the
// subscriptions in the background: flush, so that once Close returns the
// server no longer routes fleet queries to this pod.
func (s *Subscriber) stopFleet() {
	if s.svc == nil {
		return
	}
	_ = s.svc.Stop()
	if s.nc.IsConnected() {
		_ = s.nc.FlushTimeout(2 * time.Second)
	}
}

// Status is what this pod answers a fleet query with.
func (s *Subscriber) Status() betasync.PodStatus {
	cur := s.cur.Load()
	st := betasync.PodStatus{
		Pod:          s.podID,
		Version:      cur.Version,
		Hash:         cur.Hash(),
		Source:       cur.Source,
		AppliedAt:    cur.AppliedAt,
		LastRejected: s.rejected.Load(),
	}
	if !cur.FetchedAt.IsZero() {
		at := cur.FetchedAt
		st.FetchedAt = &at
	}
	return st
}

func (s *Subscriber) serveStatus(req micro.Request) {
	data, err := json.Marshal(s.Status())
	if err != nil {
		_ = req.Error("500", "encoding the status failed", nil)
		return
	}
	if err := req.Respond(data); err != nil {
		s.log.Debug("answering a fleet query failed", "err", err)
	}
}

// reject records the last version refused, for the fleet view.
func (s *Subscriber) reject(version uint64, via string, err error) {
	reason := betasync.ErrorMessage(err)
	if betasync.ErrorCode(err) == betasync.EINTERNAL {
		reason = err.Error()
	}
	s.rejected.Store(&betasync.Rejection{Version: version, Reason: reason, Via: via, At: time.Now().UTC()})
}
