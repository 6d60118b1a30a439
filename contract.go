package betasync

import (
	"encoding/json"
	"time"
)

// The bus contract: subjects and JetStream KV names that the worker, the
// HTTP API, every pod and the nats CLI share.
const (
	// ServiceName is the NATS micro service that answers commands.
	ServiceName = "betasync"

	SubjectReload         = "betasync.reload"
	SubjectScheduleSet    = "betasync.schedule.set"
	SubjectScheduleCancel = "betasync.schedule.cancel"
	SubjectScheduleStatus = "betasync.schedule.status"

	// SubjectConfigUpdated carries an Envelope for every new version.
	SubjectConfigUpdated = "config.updated"

	// BucketConfig holds the current mapping under KeyMapping, with history;
	// the KV revision of KeyMapping is the version.
	BucketConfig = "betasync_config"
	KeyMapping   = "mapping"

	// BucketState holds the shared schedule under KeySchedule.
	BucketState = "betasync_state"
	KeySchedule = "schedule"

	// BucketLock holds the worker lease under KeyLease; the bucket's TTL is
	// the lease's.
	BucketLock = "betasync_lock"
	KeyLease   = "lease"
)

// Sources of a mapping version.
const (
	SourceEmbedded = "embedded" // compiled into the binary
	SourceLocal    = "local"    // BETASYNC_LOCAL_CONFIG
	SourceRemote   = "remote"   // fetched from LITELLM_ANTHROPIC_BETA_HEADERS_URL
)

// Envelope is a mapping version as stored in KV and announced on
// config.updated. In KV, Version is zero: the entry's revision is the version.
type Envelope struct {
	Version      uint64          `json:"version,omitempty"`
	Hash         string          `json:"hash"`
	Source       string          `json:"source"`
	FetchedAt    time.Time       `json:"fetched_at"`
	URL          string          `json:"url,omitempty"`
	ETag         string          `json:"etag,omitempty"`
	LastModified string          `json:"last_modified,omitempty"`
	Config       json.RawMessage `json:"config"`
}

// NewEnvelope wraps m with where it came from.
func NewEnvelope(m *Mapping, source string, fetchedAt time.Time) Envelope {
	return Envelope{Hash: m.Hash(), Source: source, FetchedAt: fetchedAt.UTC(), Config: m.JSON()}
}

// Mapping validates the carried document and checks it against Hash, so a
// corrupted or tampered envelope is rejected rather than applied.
func (e *Envelope) Mapping() (*Mapping, error) {
	m, err := Parse(e.Config)
	if err != nil {
		return nil, err
	}
	if m.Hash() != e.Hash {
		return nil, Errorf(EINVALID, "envelope hash %q does not match its config (%s)", e.Hash, m.Hash())
	}
	return m, nil
}
