package betasync

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Reply statuses, as in LiteLLM.
const (
	StatusSuccess = "success"
	StatusError   = "error"
)

// Bounds of a schedule interval, in hours.
const (
	MinIntervalHours = 0.01
	MaxIntervalHours = 8760
)

// ReloadResult answers a reload: LiteLLM's keys plus ours.
type ReloadResult struct {
	Status string `json:"status"`
	// Message is LiteLLM's text (LiteLLMReloadMessage) on a reload, and
	// betasync's on a rollback.
	Message string `json:"message"`
	// Summary is betasync's account of a reload: "new version 2",
	// "version 2 unchanged", ...
	Summary        string    `json:"summary,omitempty"`
	Warnings       []string  `json:"warnings,omitempty"` // what LiteLLM tolerates but can never match
	ProvidersCount int       `json:"providers_count"`
	Timestamp      time.Time `json:"timestamp"`
	Version        uint64    `json:"version"`
	Changed        bool      `json:"changed"`
	Source         string    `json:"source"`
	Hash           string    `json:"hash"`
	URL            string    `json:"url,omitempty"`
	// Changes is what the new version changed; absent when Changed is false.
	Changes Changes `json:"changes,omitempty"`
	// RedundantOverrides are overrides the upstream document now agrees
	// with: deleting them would change nothing.
	RedundantOverrides []OverrideRef `json:"redundant_overrides,omitempty"`
}

// ScheduleResult answers setting a schedule.
type ScheduleResult struct {
	Status        string     `json:"status"`
	Message       string     `json:"message"`
	IntervalHours float64    `json:"interval_hours"`
	NextRun       *time.Time `json:"next_run"`
	Timestamp     time.Time  `json:"timestamp"`
}

// CancelResult answers cancelling a schedule.
type CancelResult struct {
	Status    string    `json:"status"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
}

// ScheduleStatus is the shared schedule and the current version, the same
// from every replica. Times are UTC; absent times are null.
//
// LiteLLM's four keys mean what they mean in LiteLLM: last_run is the last
// reload since the schedule was set (null when not scheduled, so null after
// a cancel), and next_run is null until such a reload ran. betasync's own
// view is in LastReload (the last reload of any kind, schedule or not) and
// NextScheduledRun (when the lease holder runs the next scheduled reload,
// known from the moment the schedule is set).
type ScheduleStatus struct {
	Scheduled        bool       `json:"scheduled"`
	IntervalHours    *float64   `json:"interval_hours"`
	LastRun          *time.Time `json:"last_run"`
	NextRun          *time.Time `json:"next_run"`
	LastReload       *time.Time `json:"last_reload,omitempty"`
	NextScheduledRun *time.Time `json:"next_scheduled_run,omitempty"`
	LastSuccess      *time.Time `json:"last_success"`
	LastError        *RunError  `json:"last_error"`
	ConfigVersion    uint64     `json:"config_version"`
	ConfigSource     string     `json:"config_source"`
	ConfigHash       string     `json:"config_hash"`
	LockHolder       string     `json:"lock_holder"`
	// ScheduleError says the stored schedule record is corrupt; setting or
	// cancelling the schedule replaces it.
	ScheduleError string `json:"schedule_error,omitempty"`
	// Warning says this answer did not come from a worker: an API replica
	// read the schedule from KV itself because no worker answered.
	Warning string `json:"warning,omitempty"`
}

// RunError is the error of the last reload (last_error): null once a
// reload succeeds.
type RunError struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// ErrorReply is the body of a failed command on the bus. Detail repeats
// Message under the key that LiteLLM's (FastAPI's) error bodies use, so a
// script reads .detail from an HTTP error and a bus error alike.
type ErrorReply struct {
	Status  string `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// ParseHours reads a schedule interval written as text: an HTTP query's
// hours, or a command payload's (a JSON number's text, or a string's
// content). Empty (missing) or not a number is EUNPROCESSABLE; a number out
// of range (NaN and infinities included) is EINVALID. Either message names
// hours.
func ParseHours(text string) (float64, error) {
	s := strings.TrimSpace(text)
	if s == "" || s == "null" {
		return 0, Errorf(EUNPROCESSABLE, "hours is required: a number of hours from %g to %g", MinIntervalHours, float64(MaxIntervalHours))
	}
	word := strings.ToLower(strings.TrimLeft(s, "+-"))
	if !decimal.MatchString(s) && word != "nan" && word != "inf" && word != "infinity" {
		return 0, Errorf(EUNPROCESSABLE, "hours must be a number, got %q", s)
	}
	// The only error left is ErrRange, which comes with ±Inf or 0: both
	// fail validation below.
	h, _ := strconv.ParseFloat(s, 64)
	return h, ValidateHours(h)
}

// decimal is a plain decimal number, as JSON or a person would write it (no
// hex, no digit separators).
var decimal = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`)

// ValidateHours rejects intervals outside [MinIntervalHours, MaxIntervalHours].
func ValidateHours(h float64) error {
	if math.IsNaN(h) || h < MinIntervalHours || h > MaxIntervalHours {
		return Errorf(EINVALID, "hours must be from %g to %g, got %g", MinIntervalHours, float64(MaxIntervalHours), h)
	}
	return nil
}
