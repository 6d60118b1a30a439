package betasync

import (
	"context"
	"slices"
)

// Changes is what changed between two mapping versions, per provider: betas
// added (now forwarded, under Added[beta]), removed (no longer in the
// section), now unsupported (forwarded before, null now) and renamed
// (forwarded under another name). A provider whose section appeared or went
// away shows all its betas as added or removed. Empty means no change
// (though the description or the aliases may differ).
type Changes map[string]ProviderChanges

// ProviderChanges is one provider's part of Changes. Maps from beta to the
// provider's name for it; slices are sorted.
type ProviderChanges struct {
	Added       map[string]*string `json:"added,omitempty"`       // beta -> new name (null: added as unsupported)
	Removed     []string           `json:"removed,omitempty"`     // no longer in the section
	Unsupported []string           `json:"unsupported,omitempty"` // forwarded before, null now
	Renamed     map[string]Rename  `json:"renamed,omitempty"`     // forwarded under a different name, or null before and forwarded now
}

// Rename is a beta whose provider name changed: From is null when the beta
// was unsupported before.
type Rename struct {
	From *string `json:"from"`
	To   string  `json:"to"`
}

// Diff returns what changed from old to new. old may be nil (everything in
// new is added).
func Diff(old, new *Mapping) Changes {
	out := Changes{}
	providers := map[string]bool{}
	if old != nil {
		for _, p := range old.Providers() {
			providers[p] = true
		}
	}
	for _, p := range new.Providers() {
		providers[p] = true
	}
	for p := range providers {
		var before, after map[string]*string
		if old != nil {
			before, _ = old.Section(p)
		}
		after, _ = new.Section(p)
		var pc ProviderChanges
		for beta, to := range after {
			from, had := before[beta]
			switch {
			case !had:
				if pc.Added == nil {
					pc.Added = map[string]*string{}
				}
				pc.Added[beta] = to
			case to == nil && from != nil:
				pc.Unsupported = append(pc.Unsupported, beta)
			case to != nil && (from == nil || *from != *to):
				if pc.Renamed == nil {
					pc.Renamed = map[string]Rename{}
				}
				pc.Renamed[beta] = Rename{From: from, To: *to}
			}
		}
		for beta := range before {
			if _, ok := after[beta]; !ok {
				pc.Removed = append(pc.Removed, beta)
			}
		}
		slices.Sort(pc.Removed)
		slices.Sort(pc.Unsupported)
		if pc.Added != nil || pc.Removed != nil || pc.Unsupported != nil || pc.Renamed != nil {
			out[p] = pc
		}
	}
	return out
}

// Actor is who asked for an admin action and from where, for the audit
// trail: the API key's name ("master" for the master key) and the client's
// address, or the NATS user of a bus request where known.
type Actor struct {
	Name string `json:"name"`
	Addr string `json:"addr,omitempty"`
}

type actorKey struct{}

// WithActor returns ctx carrying who is acting.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns who is acting in ctx; ok is false when nobody said.
func ActorFrom(ctx context.Context) (a Actor, ok bool) {
	a, ok = ctx.Value(actorKey{}).(Actor)
	return a, ok
}
