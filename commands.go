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
	Status         string    `json:"status"`
	Message        string    `json:"message"`
	Warnings       []string  `json:"warnings,omitempty"` // what LiteLLM tolerates but can never match
	ProvidersCount int       `json:"providers_count"`
	Timestamp      time.Time `json:"timestamp"`
	Version        uint64    `json:"version"`
	Changed        bool      `json:"changed"`
	Source         string    `json:"source"`
	Hash           string    `json:"hash"`
	URL            string    `json:"url,omitempty"`
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
type ScheduleStatus struct {
	Scheduled     bool       `json:"scheduled"`
	IntervalHours *float64   `json:"interval_hours"`
	LastRun       *time.Time `json:"last_run"`
	NextRun       *time.Time `json:"next_run"`
	LastSuccess   *time.Time `json:"last_success"`
	LastError     *RunError  `json:"last_error"`
	ConfigVersion uint64     `json:"config_version"`
	ConfigSource  string     `json:"config_source"`
	ConfigHash    string     `json:"config_hash"`
	LockHolder    string     `json:"lock_holder"`
	// ScheduleError says the stored schedule record is corrupt; setting or
	// cancelling the schedule replaces it.
	ScheduleError string `json:"schedule_error,omitempty"`
}

// RunError is the error of the last reload (last_error): null once a
// reload succeeds.
type RunError struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// ErrorReply is the body of a failed command.
type ErrorReply struct {
	Status  string `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
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
