package betasync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Commands is the command set: what an operator can ask of betasync. The
// worker carries the commands out; publisher.Client sends them over NATS to
// whichever worker answers; publisher.Serve serves any Commands as the NATS
// micro service; the HTTP API turns each admin call into one of them. A new
// command is a method here, its reply type beside it, and one entry in each
// of those adapters.
type Commands interface {
	// Reload fetches the mapping now; concurrent reloads are coalesced.
	Reload(ctx context.Context) (ReloadResult, error)
	// SetSchedule reloads every hours hours, on whichever replica holds
	// the lease. hours must pass ValidateHours.
	SetSchedule(ctx context.Context, hours float64) (ScheduleResult, error)
	// CancelSchedule stops scheduled reloads.
	CancelSchedule(ctx context.Context) (CancelResult, error)
	// Status returns the shared schedule and the current version.
	Status(ctx context.Context) (ScheduleStatus, error)
	// History lists the stored versions, newest first, at most limit
	// (DefaultHistoryLimit when 0) of them.
	History(ctx context.Context, limit int) (HistoryResult, error)
	// HistoryVersion returns one stored version in its envelope form; a
	// version no longer kept is ENOTFOUND, naming the versions kept.
	HistoryVersion(ctx context.Context, version uint64) (*Snapshot, error)
	// Rollback stores version's document as a new version (SourceRollback)
	// and announces it; a version no longer kept is ENOTFOUND.
	Rollback(ctx context.Context, version uint64) (RollbackResult, error)
	// SetOverride forwards beta to provider (a section or an alias) under
	// value, or drops it (value nil), whatever the upstream document says,
	// and stores a new version (source "override").
	SetOverride(ctx context.Context, provider, beta string, value *string) (OverrideResult, error)
	// DeleteOverride removes an override and stores a new version.
	DeleteOverride(ctx context.Context, provider, beta string) (OverrideResult, error)
	// ListOverrides returns the stored overrides.
	ListOverrides(ctx context.Context) (OverrideList, error)
	// Fleet asks every pod which version it serves, collects the answers
	// for a short window, and says whether the fleet has converged.
	Fleet(ctx context.Context) (FleetView, error)
}

// Sources of a mapping version.
const (
	SourceEmbedded = "embedded" // compiled into the binary
	SourceLocal    = "local"    // BETASYNC_LOCAL_CONFIG
	SourceRemote   = "remote"   // fetched from LITELLM_ANTHROPIC_BETA_HEADERS_URL
	SourceRollback = "rollback" // an earlier version's document, stored again
)

// Snapshot is one mapping version: the validated mapping, with its methods
// (Hash, AppendBetas, ...) promoted, and where it came from. The worker
// produces it, KV stores it, config.updated carries it, and a subscriber
// serves it. It is immutable once built.
//
// Its wire form (MarshalJSON, UnmarshalJSON) is the envelope that
// config.updated carries and KV stores:
//
//	{"version", "hash", "source", "fetched_at", "url", "etag", "last_modified",
//	 "actor", "rolled_back_from", "changes", "config", "signer", "signature",
//	 "overrides"}
//
// actor, rolled_back_from, changes, signer, signature and overrides are left
// out when empty.
//
// In KV, version is left out: the entry's revision is the version.
type Snapshot struct {
	*Mapping
	Version      uint64    // the KV revision; 0 for a version not stored (the embedded default)
	Source       string    // SourceRemote, SourceLocal, SourceEmbedded, ...
	FetchedAt    time.Time // when the worker loaded it; zero for a built-in default
	URL          string    // where it was fetched from
	ETag         string    // the source's ETag, for conditional fetches
	LastModified string    // the source's Last-Modified, for conditional fetches
	AppliedAt    time.Time // when a subscriber swapped to it; not part of the wire form

	// Actor is who produced the version: an API key's name ("master" for
	// the master key), a NATS client's claimed name ("nats" when it gave
	// none), or the worker itself ("startup", "schedule").
	Actor string
	// RolledBackFrom is the version whose document a rollback stored again.
	RolledBackFrom uint64
	// Changes is what changed against the version stored before it; nil
	// for the first version.
	Changes Changes
	// Signer and Signature: the worker's public key and its signature of
	// Version and the document's hash (see Signer); empty when unsigned.
	Signer    string
	Signature string

	// Overrides are the runtime overrides merged into Mapping, with what the
	// upstream document had under each (see Upstream); nil when none.
	Overrides AppliedOverrides
}

// NewSnapshot wraps m with where it came from; Version is set once stored.
func NewSnapshot(m *Mapping, source string, fetchedAt time.Time) *Snapshot {
	return &Snapshot{Mapping: m, Source: source, FetchedAt: fetchedAt.UTC()}
}

// envelope is a Snapshot's wire form.
type envelope struct {
	Version      uint64          `json:"version,omitempty"`
	Hash         string          `json:"hash"`
	Source       string          `json:"source"`
	FetchedAt    time.Time       `json:"fetched_at"`
	URL          string          `json:"url,omitempty"`
	ETag         string          `json:"etag,omitempty"`
	LastModified string          `json:"last_modified,omitempty"`
	Actor        string          `json:"actor,omitempty"`
	RolledBack   uint64          `json:"rolled_back_from,omitempty"`
	Changes      Changes         `json:"changes,omitempty"`
	Config       json.RawMessage `json:"config"`
	Signer       string          `json:"signer,omitempty"`
	Signature    string          `json:"signature,omitempty"`

	// The overrides merged into config; see Snapshot.Overrides.
	Overrides AppliedOverrides `json:"overrides,omitempty"`
}

// MarshalJSON encodes the envelope. (A value receiver, so that it, and not
// the embedded Mapping's, is used for values and pointers alike.)
func (s Snapshot) MarshalJSON() ([]byte, error) {
	// The members before config go through encoding/json; the config, the
	// canonical encoding, is appended as is rather than re-validated and
	// compacted, which would cost a scan of the whole document.
	head, err := json.Marshal(envelope{
		Version:      s.Version,
		Hash:         s.Hash(),
		Source:       s.Source,
		FetchedAt:    s.FetchedAt,
		URL:          s.URL,
		ETag:         s.ETag,
		LastModified: s.LastModified,
		Actor:        s.Actor,
		RolledBack:   s.RolledBackFrom,
		Changes:      s.Changes,
		Config:       json.RawMessage("0"),
	})
	if err != nil {
		return nil, err
	}
	const tail = `,"config":0}`
	if !bytes.HasSuffix(head, []byte(tail)) {
		return nil, fmt.Errorf("betasync: envelope encoding: unexpected form %.64q", head)
	}
	config := s.canonical
	out := make([]byte, 0, len(head)+len(config)+64)
	out = append(out, head[:len(head)-len(tail)]...)
	out = append(out, `,"config":`...)
	out = append(out, config...)
	if s.Signature != "" {
		sig, err := json.Marshal(struct {
			Signer    string `json:"signer"`
			Signature string `json:"signature"`
		}{s.Signer, s.Signature})
		if err != nil {
			return nil, err
		}
		out = append(out, ',')
		out = append(out, sig[1:len(sig)-1]...) // the members, without the braces
	}
	if len(s.Overrides) > 0 {
		ov, err := json.Marshal(s.Overrides)
		if err != nil {
			return nil, err
		}
		out = append(out, `,"overrides":`...)
		out = append(out, ov...)
	}
	return append(out, '}'), nil
}

// UnmarshalJSON decodes an envelope, validates the carried document and
// checks it against the envelope's hash, so a corrupted or tampered
// envelope is rejected (EINVALID) rather than applied.
func (s *Snapshot) UnmarshalJSON(data []byte) error {
	return s.DecodeAfter(data, nil)
}

// DecodeAfter is UnmarshalJSON for a version that follows prev (nil: none),
// the version the caller holds, as a subscriber does with each event: the
// result, and every check, are UnmarshalJSON's, but the provider sections
// that data carries byte for byte as prev's canonical encoding had them are
// shared with prev rather than decoded and validated again (the same bytes
// give the same section). The document is still read whole, and its hash
// computed over every byte and checked.
func (s *Snapshot) DecodeAfter(data []byte, prev *Mapping) error {
	return s.decodeAfter(data, prev, false)
}

// DecodeOwnedAfter is DecodeAfter for a buffer the caller hands over for
// good: data must never change afterwards, because the snapshot refers into
// it instead of copying it. A NATS message's payload, which the client
// allocates for each message, is such a buffer once nothing else holds the
// message; the subscriber decodes every event this way, which saves a copy
// of the document (and the garbage collection it costs) per pod and
// version.
func (s *Snapshot) DecodeOwnedAfter(data []byte, prev *Mapping) error {
	return s.decodeAfter(data, prev, true)
}

func (s *Snapshot) decodeAfter(data []byte, prev *Mapping, owned bool) error {
	if s.unmarshalFast(data, prev, owned) { // envelope_scan.go
		return nil
	}
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Errorf(EINVALID, "not a mapping envelope: %v", err)
	}
	m, err := Parse(e.Config)
	if err != nil {
		return err
	}
	return s.fromEnvelope(e, m)
}

// fromEnvelope checks a decoded envelope against m, its parsed config, and
// sets s from it.
func (s *Snapshot) fromEnvelope(e envelope, m *Mapping) error {
	if m.Hash() != e.Hash {
		return Errorf(EINVALID, "envelope hash %q does not match its config (%s)", e.Hash, m.Hash())
	}
	if err := e.Overrides.check(m); err != nil {
		return err
	}
	*s = Snapshot{
		Mapping:        m,
		Version:        e.Version,
		Source:         e.Source,
		FetchedAt:      e.FetchedAt,
		URL:            e.URL,
		ETag:           e.ETag,
		LastModified:   e.LastModified,
		Actor:          e.Actor,
		RolledBackFrom: e.RolledBack,
		Changes:        e.Changes,
		Overrides:      e.Overrides,
		Signer:         e.Signer,
		Signature:      e.Signature,
	}
	return nil
}

// PeekVersion reads only an envelope's version, so that a subscriber can
// drop a stale event without validating its document.
func PeekVersion(data []byte) (uint64, error) {
	if v, ok := peekVersionFast(data); ok { // envelope_scan.go
		return v, nil
	}
	var head struct {
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return 0, Errorf(EINVALID, "not a mapping envelope: %v", err)
	}
	return head.Version, nil
}
