package publisher

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/betasync/betasync"
)

// Headers that carry who sent a command (betasync.Actor). They are a claim,
// not a proof: any client allowed to publish on betasync.> may set them, so
// NATS permissions are the real authority.
const (
	HeaderActor     = "Betasync-Actor"
	HeaderActorAddr = "Betasync-Actor-Addr"
)

// ActorNATS names the actor of a bus request that did not say who it is.
const ActorNATS = "nats"

// actorHeader returns the headers naming ctx's actor; nil when none.
func actorHeader(ctx context.Context) nats.Header {
	a, ok := betasync.ActorFrom(ctx)
	if !ok || a.Name == "" {
		return nil
	}
	h := nats.Header{HeaderActor: []string{a.Name}}
	if a.Addr != "" {
		h.Set(HeaderActorAddr, a.Addr)
	}
	return h
}

// withActor returns ctx carrying the actor that h names, or ActorNATS.
func withActor(ctx context.Context, h interface{ Get(string) string }) context.Context {
	a := betasync.Actor{Name: ActorNATS}
	if h != nil {
		if name := h.Get(HeaderActor); name != "" {
			a = betasync.Actor{Name: name, Addr: h.Get(HeaderActorAddr)}
		}
	}
	return betasync.WithActor(ctx, a)
}
