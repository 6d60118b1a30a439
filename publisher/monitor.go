package publisher

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// The betasync service speaks the NATS service API (ADR-32: $SRV.PING,
// $SRV.INFO and $SRV.STATS, for all services, by name and by id) itself
// rather than through nats.go's micro package, whose stats are taken when
// a handler returns: a command here is answered on its own goroutine (so
// concurrent reloads can be coalesced), after the handler has returned, and
// micro would count neither its errors nor its time. The replies are
// micro's own types, so `nats micro ls|info|stats` and any micro client
// read them unchanged.

// endpoint is one command subject and its counters.
type endpoint struct {
	name, subject string
	serve         serveFunc
	sub           *nats.Subscription

	// guarded by monitor.mu
	requests, errors int
	lastError        string
	busy             time.Duration
}

// monitor answers the $SRV verbs and keeps the endpoint counters.
type monitor struct {
	identity    micro.ServiceIdentity
	description string
	started     time.Time
	endpoints   []*endpoint
	verbSubs    []*nats.Subscription

	mu sync.Mutex
}

func newMonitor(version, description string, metadata map[string]string) *monitor {
	return &monitor{
		identity: micro.ServiceIdentity{
			Name: ServiceName, ID: nuid.Next(), Version: version, Metadata: metadata,
		},
		description: description,
		started:     time.Now().UTC(),
	}
}

// done records one command answered (or dropped, when code is 0 and err
// empty) after running for d. code and text describe an error reply.
func (m *monitor) done(ep *endpoint, d time.Duration, code int, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ep.requests++
	ep.busy += d
	if text != "" {
		ep.errors++
		ep.lastError = fmt.Sprintf("%d:%s", code, text) // micro's "code:description"
	}
}

// subscribeVerbs answers PING, INFO and STATS on the three subjects each:
// every service, this service's name, and this instance's id.
func (m *monitor) subscribeVerbs(nc *nats.Conn) error {
	for verb, body := range map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: m.identityCopy(), Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return m.info() },
		micro.StatsVerb: func() any { return m.stats() },
	} {
		for _, subject := range []string{
			fmt.Sprintf("%s.%s", micro.APIPrefix, verb),
			fmt.Sprintf("%s.%s.%s", micro.APIPrefix, verb, m.identity.Name),
			fmt.Sprintf("%s.%s.%s.%s", micro.APIPrefix, verb, m.identity.Name, m.identity.ID),
		} {
			sub, err := nc.Subscribe(subject, func(msg *nats.Msg) {
				data, err := json.Marshal(body())
				if err == nil && msg.Reply != "" {
					_ = msg.Respond(data)
				}
			})
			if err != nil {
				return err
			}
			m.verbSubs = append(m.verbSubs, sub)
		}
	}
	return nil
}

func (m *monitor) identityCopy() micro.ServiceIdentity {
	id := m.identity
	id.Metadata = maps.Clone(id.Metadata)
	return id
}

func (m *monitor) info() micro.Info {
	info := micro.Info{
		ServiceIdentity: m.identityCopy(),
		Type:            micro.InfoResponseType,
		Description:     m.description,
		Endpoints:       make([]micro.EndpointInfo, 0, len(m.endpoints)),
	}
	for _, ep := range m.endpoints {
		info.Endpoints = append(info.Endpoints, micro.EndpointInfo{
			Name: ep.name, Subject: ep.subject, QueueGroup: micro.DefaultQueueGroup,
		})
	}
	return info
}

func (m *monitor) stats() micro.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := micro.Stats{
		ServiceIdentity: m.identityCopy(),
		Type:            micro.StatsResponseType,
		Started:         m.started,
		Endpoints:       make([]*micro.EndpointStats, 0, len(m.endpoints)),
	}
	for _, ep := range m.endpoints {
		es := &micro.EndpointStats{
			Name: ep.name, Subject: ep.subject, QueueGroup: micro.DefaultQueueGroup,
			NumRequests: ep.requests, NumErrors: ep.errors, LastError: ep.lastError,
			ProcessingTime: ep.busy,
		}
		if ep.requests > 0 {
			es.AverageProcessingTime = ep.busy / time.Duration(ep.requests)
		}
		st.Endpoints = append(st.Endpoints, es)
	}
	return st
}

// unsubscribeVerbs takes the instance out of discovery.
func (m *monitor) unsubscribeVerbs() {
	for _, sub := range m.verbSubs {
		_ = sub.Unsubscribe()
	}
}
