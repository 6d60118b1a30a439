package publisher

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/betasync/betasync"
)

// decode reads a command payload: empty, or a JSON object whose known
// fields fill into (nil: a command without arguments). Unknown fields are
// ignored, so older workers accept newer clients' payloads.
func decode(payload []byte, into any) error {
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte(`{}`)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return betasync.Errorf(betasync.EINVALID, "payload must be empty or a JSON object")
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(payload, into); err != nil {
		if _, ok := errors.AsType[*betasync.Error](err); ok {
			return err
		}
		return betasync.Errorf(betasync.EINVALID, "payload: %v", err)
	}
	return nil
}

// scheduleSetPayload is betasync.schedule.set's payload: {"hours": 24}.
type scheduleSetPayload struct {
	Hours *hours `json:"hours"`
}

// interval returns the payload's hours; missing is EUNPROCESSABLE.
func (p scheduleSetPayload) interval() (float64, error) {
	if p.Hours == nil {
		return betasync.ParseHours("")
	}
	return float64(*p.Hours), nil
}

// hours is a schedule interval in a payload: a JSON number, or a string
// holding one (what a shell script or an HTTP query has), read with
// betasync.ParseHours; missing or null is EUNPROCESSABLE.
type hours float64

// UnmarshalJSON reads a present hours, null included (which is missing).
func (h *hours) UnmarshalJSON(raw []byte) error {
	text := string(raw)
	if strings.HasPrefix(text, `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return betasync.Errorf(betasync.EUNPROCESSABLE, "hours must be a number")
		}
		text = s
	}
	v, err := betasync.ParseHours(text)
	*h = hours(v)
	return err
}
