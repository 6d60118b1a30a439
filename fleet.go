package betasync

import (
	"cmp"
	"slices"
	"time"
)

// DefaultFleetWindow is how long a fleet query collects pod answers.
const DefaultFleetWindow = 500 * time.Millisecond

// PodStatus is one pod's answer to a fleet query (betasync.pod.status):
// which version it serves and the last version it refused.
type PodStatus struct {
	Pod          string     `json:"pod"`                  // the pod id (subscriber.WithPodID)
	Version      uint64     `json:"version"`              // the version it serves; 0: the built-in default
	Hash         string     `json:"hash"`                 // sha256 of that version's canonical JSON
	Source       string     `json:"source"`               // remote, local, embedded, ...
	AppliedAt    time.Time  `json:"applied_at"`           // when the pod swapped to it
	FetchedAt    *time.Time `json:"fetched_at,omitempty"` // when the worker loaded it; absent for a built-in default
	LastRejected *Rejection `json:"last_rejected"`        // null until the pod refuses a version
}

// Rejection is a version a pod refused, and why. Only versions that failed
// to decode, validate or match their hash, or that KV does not hold (a
// forged event, found out at the next resync), are recorded: stale and duplicate
// events are routine (every announcement a pod already has from KV is one),
// so they are only counted.
type Rejection struct {
	Version uint64    `json:"version"` // the version it claimed; 0 when unreadable
	Reason  string    `json:"reason"`  // what was wrong, naming the offending key
	Via     string    `json:"via"`     // "event": refused on arrival; "kv": the stored version did not decode; "resync": applied, then replaced because KV does not hold it
	At      time.Time `json:"at"`
}

// FleetView answers a fleet query: every pod that answered within the
// window, sorted by pod id.
type FleetView struct {
	Pods          []PodStatus `json:"pods"`
	Count         int         `json:"count"`
	NewestVersion uint64      `json:"newest_version"` // the highest version any pod serves
	Converged     bool        `json:"converged"`      // at least one pod answered, and all serve NewestVersion
	Lagging       []string    `json:"lagging"`        // ids of the pods below NewestVersion
	WindowMS      int64       `json:"window_ms"`      // how long answers were collected
	Timestamp     time.Time   `json:"timestamp"`      // when the collection ended
}

// NewFleetView sorts pods by id (keeping one answer per id: the one with the
// highest version) and computes the newest version and the laggards.
func NewFleetView(pods []PodStatus, window time.Duration, at time.Time) FleetView {
	byID := make(map[string]PodStatus, len(pods))
	for _, p := range pods {
		if prev, ok := byID[p.Pod]; !ok || p.Version > prev.Version {
			byID[p.Pod] = p
		}
	}
	v := FleetView{Pods: make([]PodStatus, 0, len(byID)), Lagging: []string{}, WindowMS: window.Milliseconds(), Timestamp: at.UTC()}
	for _, p := range byID {
		v.Pods = append(v.Pods, p)
		v.NewestVersion = max(v.NewestVersion, p.Version)
	}
	slices.SortFunc(v.Pods, func(a, b PodStatus) int { return cmp.Compare(a.Pod, b.Pod) })
	for _, p := range v.Pods {
		if p.Version < v.NewestVersion {
			v.Lagging = append(v.Lagging, p.Pod)
		}
	}
	v.Count = len(v.Pods)
	v.Converged = v.Count > 0 && len(v.Lagging) == 0
	return v
}
