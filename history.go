package betasync

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultHistoryLimit is how many versions History lists when no limit is
// given.
const DefaultHistoryLimit = 20

// HistoryResult lists stored versions, newest first.
type HistoryResult struct {
	Status   string         `json:"status"`
	Current  uint64         `json:"current"`  // the current version; 0 when none is stored
	Kept     []uint64       `json:"kept"`     // every version still kept, oldest first (rollback targets)
	Count    int            `json:"count"`    // len(Versions)
	Versions []HistoryEntry `json:"versions"` // newest first, at most the limit asked for
}

// HistoryEntry is one stored version, without its document (see
// Commands.HistoryVersion for that).
type HistoryEntry struct {
	Version        uint64    `json:"version"`
	Hash           string    `json:"hash"`
	Source         string    `json:"source"`
	FetchedAt      time.Time `json:"fetched_at"`
	URL            string    `json:"url,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	RolledBackFrom uint64    `json:"rolled_back_from,omitempty"`
	ProvidersCount int       `json:"providers_count"`
	// Changes is what changed against the version stored before it;
	// absent for the first version and when nothing changed.
	Changes Changes `json:"changes,omitempty"`
}

// EntryOf describes a stored version for History.
func EntryOf(s *Snapshot) HistoryEntry {
	return HistoryEntry{
		Version:        s.Version,
		Hash:           s.Hash(),
		Source:         s.Source,
		FetchedAt:      s.FetchedAt,
		URL:            s.URL,
		Actor:          s.Actor,
		RolledBackFrom: s.RolledBackFrom,
		ProvidersCount: len(s.Providers()),
		Changes:        s.Changes,
	}
}

// RollbackResult answers a rollback: the shape of ReloadResult, with the
// version rolled back to.
type RollbackResult struct {
	Status         string    `json:"status"`
	Message        string    `json:"message"`
	ProvidersCount int       `json:"providers_count"`
	Timestamp      time.Time `json:"timestamp"`
	Version        uint64    `json:"version"` // the version now current
	Changed        bool      `json:"changed"`
	Source         string    `json:"source"`
	Hash           string    `json:"hash"`
	RolledBackFrom uint64    `json:"rolled_back_from"` // the version whose document was restored
	// Changes is what the rollback changed; absent when Changed is false.
	Changes Changes `json:"changes,omitempty"`
}

// ParseVersion reads a version number written as text: an HTTP query's or
// path's version, or a command payload's. Empty (missing) or not a whole
// number is EUNPROCESSABLE; 0 is EINVALID (versions start at 1). Either
// message names version.
func ParseVersion(text string) (uint64, error) {
	s := strings.TrimSpace(text)
	if s == "" || s == "null" {
		return 0, Errorf(EUNPROCESSABLE, "version is required: a stored version number (see the history)")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, Errorf(EUNPROCESSABLE, "version must be a whole number, got %q", s)
	}
	if v == 0 {
		return 0, Errorf(EINVALID, "version must be at least 1, got 0")
	}
	return v, nil
}

// ParseLimit reads History's limit written as text: empty is 0 (the
// default); not a whole number is EUNPROCESSABLE; negative is EINVALID.
func ParseLimit(text string) (int, error) {
	s := strings.TrimSpace(text)
	if s == "" || s == "null" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, Errorf(EUNPROCESSABLE, "limit must be a whole number, got %q", s)
	}
	return n, ValidateLimit(n)
}

// ValidateLimit rejects a negative History limit.
func ValidateLimit(n int) error {
	if n < 0 {
		return Errorf(EINVALID, "limit must be 0 (the default, %d) or more, got %d", DefaultHistoryLimit, n)
	}
	return nil
}

// VersionRanges writes ascending versions as ranges: 3, 5, 6, 7 is "3,
// 5-7"; none is "".
func VersionRanges(versions []uint64) string {
	var b strings.Builder
	for i := 0; i < len(versions); {
		j := i
		for j+1 < len(versions) && versions[j+1] == versions[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&b, "%d", versions[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", versions[i], versions[j])
		}
		i = j + 1
	}
	return b.String()
}

// NotKept is the ENOTFOUND error for a version that is unknown or was
// purged from the history; kept is VersionRanges of what is still kept.
func NotKept(version uint64, kept string) error {
	if kept == "" {
		return Errorf(ENOTFOUND, "version %d is not kept: no versions are stored", version)
	}
	return Errorf(ENOTFOUND, "version %d is not kept (unknown, or purged from the history); versions kept: %s", version, kept)
}
