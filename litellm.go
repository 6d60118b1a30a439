package betasync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// LiteLLM's texts on its four endpoints (litellm/proxy/proxy_server.py),
// which scripts written for LiteLLM match on. The reply keys LiteLLM also
// has hold these; betasync's own account of a reload is in Summary.
const (
	// LiteLLMReloadMessage takes the number of provider sections.
	LiteLLMReloadMessage = "Anthropic beta headers configuration reloaded successfully! %d providers updated."
	// LiteLLMScheduleMessage takes the interval in hours.
	LiteLLMScheduleMessage = "Anthropic beta headers reload scheduled for every %s hours"
	LiteLLMCancelMessage   = "Anthropic beta headers reload schedule cancelled"
)

// LiteLLMHours writes hours as LiteLLM's f-string does for its int hours
// (6, not 6.0); fractions, which LiteLLM does not accept, as %g.
func LiteLLMHours(h float64) string { return fmt.Sprintf("%g", h) }

// LiteLLMTime formats t as LiteLLM's datetime.isoformat() on a UTC time:
// microseconds (left out when zero, as Python does) and "+00:00", e.g.
// 2026-03-01T12:00:00.123456+00:00. Go's time.Time parses it back.
func LiteLLMTime(t time.Time) string {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}

// The replies of LiteLLM's four endpoints write their times as LiteLLM does
// (LiteLLMTime). Each MarshalJSON encodes the plain struct, then rewrites
// each of its times: a time.Time encodes as one JSON string, and only a
// string value that is exactly that time could be mistaken for it.
// Decoding needs nothing special: time.Time's UnmarshalJSON reads that form.

func (r ReloadResult) MarshalJSON() ([]byte, error) {
	type plain ReloadResult
	return withLiteLLMTimes(plain(r), &r.Timestamp)
}

func (r ScheduleResult) MarshalJSON() ([]byte, error) {
	type plain ScheduleResult
	return withLiteLLMTimes(plain(r), &r.Timestamp, r.NextRun)
}

func (r CancelResult) MarshalJSON() ([]byte, error) {
	type plain CancelResult
	return withLiteLLMTimes(plain(r), &r.Timestamp)
}

func (s ScheduleStatus) MarshalJSON() ([]byte, error) {
	type plain ScheduleStatus
	times := []*time.Time{s.LastRun, s.NextRun, s.LastSuccess, s.LastReload, s.NextScheduledRun}
	if s.LastError != nil {
		times = append(times, &s.LastError.Time)
	}
	return withLiteLLMTimes(plain(s), times...)
}

func withLiteLLMTimes(v any, times ...*time.Time) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	for _, t := range times {
		if t == nil {
			continue
		}
		from, err := json.Marshal(*t)
		if err != nil {
			return nil, err
		}
		to, _ := json.Marshal(LiteLLMTime(*t)) // a string always encodes
		data = bytes.ReplaceAll(data, from, to)
	}
	return data, nil
}
