package betasync_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

func TestParseHours(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		wantCode string // "" for success
		want     float64
	}{
		// Missing or not a number.
		{"missing", ``, betasync.EUNPROCESSABLE, 0},
		{"blank", "  \n", betasync.EUNPROCESSABLE, 0},
		{"null", `null`, betasync.EUNPROCESSABLE, 0},
		{"string abc", `"abc"`, betasync.EUNPROCESSABLE, 0},
		{"empty string", `""`, betasync.EUNPROCESSABLE, 0},
		{"bare word", `abc`, betasync.EUNPROCESSABLE, 0},
		{"true", `true`, betasync.EUNPROCESSABLE, 0},
		{"false", `false`, betasync.EUNPROCESSABLE, 0},
		{"object", `{}`, betasync.EUNPROCESSABLE, 0},
		{"array", `[24]`, betasync.EUNPROCESSABLE, 0},
		{"unterminated string", `"24`, betasync.EUNPROCESSABLE, 0},
		{"number with unit", `"24h"`, betasync.EUNPROCESSABLE, 0},
		{"hex float", `"0x1p3"`, betasync.EUNPROCESSABLE, 0},
		{"digit separator", `"1_0"`, betasync.EUNPROCESSABLE, 0},

		// Out of range.
		{"zero", `0`, betasync.EINVALID, 0},
		{"negative", `-1`, betasync.EINVALID, -1},
		{"below minimum", `0.001`, betasync.EINVALID, 0.001},
		{"above maximum", `8761`, betasync.EINVALID, 8761},
		{"above maximum as string", `"8760.5"`, betasync.EINVALID, 8760.5},
		{"NaN", `"NaN"`, betasync.EINVALID, math.NaN()},
		{"Inf", `"Inf"`, betasync.EINVALID, math.Inf(1)},
		{"-Inf", `"-Inf"`, betasync.EINVALID, math.Inf(-1)},
		{"Infinity", `"Infinity"`, betasync.EINVALID, math.Inf(1)},
		{"overflow", `1e400`, betasync.EINVALID, math.Inf(1)},
		{"overflow as string", `"1e400"`, betasync.EINVALID, math.Inf(1)},
		{"negative overflow", `-1e400`, betasync.EINVALID, math.Inf(-1)},
		{"underflow", `1e-400`, betasync.EINVALID, 0},

		// Accepted.
		{"24", `24`, "", 24},
		{"24 as string", `"24"`, "", 24},
		{"padded string", `" 1.5 "`, "", 1.5},
		{"padded number", " 1.5\n", "", 1.5},
		{"minimum", `0.01`, "", 0.01},
		{"maximum", `8760`, "", 8760},
		{"maximum as float", `8760.0`, "", 8760},
		{"exponent", `2.4e1`, "", 24},
		{"escaped string", `"\u0032\u0034"`, "", 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := betasync.ParseHours(payloadText(tt.raw))
			if tt.wantCode == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, h)
				assert.NoError(t, betasync.ValidateHours(h))
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.wantCode, betasync.ErrorCode(err), "error: %v", err)
			assert.Contains(t, betasync.ErrorMessage(err), "hours")
			if tt.wantCode == betasync.EINVALID {
				if math.IsNaN(tt.want) {
					assert.True(t, math.IsNaN(h))
				} else {
					assert.Equal(t, tt.want, h)
				}
			}
		})
	}
}

// payloadText is what a command payload's hours holds as text: a JSON
// string's content, or the raw text of anything else (as publisher reads it).
func payloadText(raw string) string {
	var s string
	if strings.HasPrefix(strings.TrimSpace(raw), `"`) && json.Unmarshal([]byte(raw), &s) == nil {
		return s
	}
	return raw
}

func TestValidateHours(t *testing.T) {
	tests := []struct {
		h  float64
		ok bool
	}{
		{betasync.MinIntervalHours, true},
		{betasync.MaxIntervalHours, true},
		{1, true},
		{math.Nextafter(betasync.MinIntervalHours, 0), false},
		{math.Nextafter(betasync.MaxIntervalHours, math.Inf(1)), false},
		{0, false},
		{math.Copysign(0, -1), false},
		{math.NaN(), false},
		{math.Inf(1), false},
		{math.Inf(-1), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.h), func(t *testing.T) {
			err := betasync.ValidateHours(tt.h)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Equal(t, betasync.EINVALID, betasync.ErrorCode(err))
			}
		})
	}
}

func TestSnapshotWireForm(t *testing.T) {
	m := parseFixture(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	snap := betasync.NewSnapshot(m, betasync.SourceRemote, at)
	snap.Version, snap.URL, snap.ETag, snap.LastModified = 3, "https://example.test/m.json", `"e"`, "lm"

	t.Run("new snapshot", func(t *testing.T) {
		assert.Equal(t, m.Hash(), snap.Hash())
		assert.Equal(t, betasync.SourceRemote, snap.Source)
		assert.Equal(t, time.UTC, snap.FetchedAt.Location())
		assert.True(t, snap.FetchedAt.Equal(at))
	})

	t.Run("survives a JSON round trip", func(t *testing.T) {
		// json.Marshal HTML-escapes the raw config; the hash is of the
		// content, so it still matches.
		html := mustParseDoc(t, `{"description":"<b>&</b>","anthropic":{"a":"a"}}`)
		for _, mm := range []*betasync.Mapping{m, html} {
			s := *snap
			s.Mapping = mm
			for _, v := range []any{s, &s} { // value and pointer encode alike
				b, err := json.Marshal(v)
				require.NoError(t, err)
				var back betasync.Snapshot
				require.NoError(t, json.Unmarshal(b, &back))
				assert.Equal(t, mm.Hash(), back.Hash())
				assert.Equal(t, s.Version, back.Version)
				assert.Equal(t, s.URL, back.URL)
				assert.Equal(t, s.ETag, back.ETag)
				assert.Equal(t, s.LastModified, back.LastModified)
				assert.True(t, s.FetchedAt.Equal(back.FetchedAt))
				v, err := betasync.PeekVersion(b)
				require.NoError(t, err)
				assert.Equal(t, s.Version, v)
			}
		}
	})

	wire, err := json.Marshal(snap)
	require.NoError(t, err)
	other := mustParseDoc(t, `{"anthropic":{"a":"a"}}`)
	tests := []struct {
		name   string
		mutate func(e map[string]any)
		want   []string
	}{
		{"hash mismatch", func(e map[string]any) { e["hash"] = other.Hash() }, []string{"envelope hash", other.Hash(), m.Hash()}},
		{"empty hash", func(e map[string]any) { e["hash"] = "" }, []string{"envelope hash"}},
		{"upper-case hash", func(e map[string]any) { e["hash"] = fmt.Sprintf("%X", m.Hash()) }, []string{"envelope hash"}},
		{"config swapped", func(e map[string]any) { e["config"] = json.RawMessage(other.JSON()) }, []string{"envelope hash", m.Hash()}},
		{"config invalid", func(e map[string]any) { e["config"] = json.RawMessage(`{"anthropic":{"a":1}}`) }, []string{`provider "anthropic": beta "a"`}},
		{"config missing", func(e map[string]any) { delete(e, "config") }, []string{"not valid JSON"}},
		{"version not a number", func(e map[string]any) { e["version"] = "7" }, []string{"not a mapping envelope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e map[string]any
			require.NoError(t, json.Unmarshal(wire, &e))
			tt.mutate(e)
			b, err := json.Marshal(e)
			require.NoError(t, err)
			var got betasync.Snapshot
			requireInvalid(t, json.Unmarshal(b, &got), tt.want...)
			assert.Nil(t, got.Mapping, "nothing is decoded from an invalid envelope")
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		var got betasync.Snapshot
		requireInvalid(t, json.Unmarshal([]byte(`[1]`), &got), "not a mapping envelope")
		_, err := betasync.PeekVersion([]byte(`{`))
		requireInvalid(t, err, "not a mapping envelope")
	})
}

func TestStatusCodes(t *testing.T) {
	tests := []struct {
		code   string
		status int
	}{
		{betasync.EINVALID, http.StatusBadRequest},
		{betasync.EUNPROCESSABLE, http.StatusUnprocessableEntity},
		{betasync.EUNAUTHORIZED, http.StatusUnauthorized},
		{betasync.EFORBIDDEN, http.StatusForbidden},
		{betasync.ENOTFOUND, http.StatusNotFound},
		{betasync.ECONFLICT, http.StatusConflict},
		{betasync.EUPSTREAM, http.StatusBadGateway},
		{betasync.EUNAVAILABLE, http.StatusServiceUnavailable},
		{betasync.EINTERNAL, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			assert.Equal(t, tt.status, betasync.Status(tt.code))
			assert.Equal(t, tt.code, betasync.CodeForStatus(tt.status))
			assert.Equal(t, tt.code, betasync.CodeForStatus(betasync.Status(tt.code)), "round trip")
		})
	}
	t.Run("unknown", func(t *testing.T) {
		assert.Equal(t, http.StatusInternalServerError, betasync.Status("nope"))
		assert.Equal(t, http.StatusInternalServerError, betasync.Status(""))
		assert.Equal(t, betasync.EINTERNAL, betasync.CodeForStatus(http.StatusTeapot))
		assert.Equal(t, betasync.EINTERNAL, betasync.CodeForStatus(0))
	})
}

func TestErrorCodeAndMessage(t *testing.T) {
	e := betasync.Errorf(betasync.ENOTFOUND, "no version %d", 7)
	tests := []struct {
		name        string
		err         error
		wantCode    string
		wantMessage string
	}{
		{"nil", nil, "", ""},
		{"direct", e, betasync.ENOTFOUND, "no version 7"},
		{"wrapped", fmt.Errorf("loading: %w", e), betasync.ENOTFOUND, "no version 7"},
		{"joined", errors.Join(errors.New("first"), e), betasync.ENOTFOUND, "no version 7"},
		{"plain error", errors.New("dial tcp: secret detail"), betasync.EINTERNAL, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantCode, betasync.ErrorCode(tt.err))
			assert.Equal(t, tt.wantMessage, betasync.ErrorMessage(tt.err))
		})
	}
	assert.Equal(t, "betasync: not_found: no version 7", e.Error())
}

// FuzzParseHours: whatever the text, ParseHours either accepts a number in
// range or rejects it with 400 or 422 and a message naming hours.
func FuzzParseHours(f *testing.F) {
	for _, s := range []string{"", "24", " 1.5 ", "0", "-1", "8761", "NaN", "inf", "1e400", "0x10", "1_0", "abc", "\x00", "+.5e1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := betasync.ParseHours(s)
		if err == nil {
			if verr := betasync.ValidateHours(h); verr != nil {
				t.Fatalf("ParseHours(%q) = %v, outside the bounds", s, h)
			}
			return
		}
		code := betasync.ErrorCode(err)
		if code != betasync.EINVALID && code != betasync.EUNPROCESSABLE {
			t.Fatalf("ParseHours(%q): code %s", s, code)
		}
		if !strings.Contains(betasync.ErrorMessage(err), "hours") {
			t.Fatalf("ParseHours(%q): message %q does not name hours", s, betasync.ErrorMessage(err))
		}
	})
}
