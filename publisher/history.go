package publisher

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/betasync/betasync"
)

// History and rollback subjects (part of the bus contract).
const (
	SubjectHistory    = "betasync.history"     // {"limit": N}: betasync.HistoryResult
	SubjectHistoryGet = "betasync.history.get" // {"version": N}: the version's envelope
	SubjectRollback   = "betasync.rollback"    // {"version": N}: betasync.RollbackResult
)

// History asks a worker for the stored versions, newest first.
func (c *Client) History(ctx context.Context, limit int) (betasync.HistoryResult, error) {
	var r betasync.HistoryResult
	if err := betasync.ValidateLimit(limit); err != nil {
		return r, err
	}
	payload, _ := json.Marshal(historyPayload{Limit: json.RawMessage(strconv.Itoa(limit))})
	return r, c.request(ctx, SubjectHistory, payload, &r)
}

// HistoryVersion asks a worker for one stored version.
func (c *Client) HistoryVersion(ctx context.Context, version uint64) (*betasync.Snapshot, error) {
	payload, err := versionJSON(version)
	if err != nil {
		return nil, err
	}
	var r betasync.Snapshot
	if err := c.request(ctx, SubjectHistoryGet, payload, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Rollback asks a worker to store version's document as a new version.
func (c *Client) Rollback(ctx context.Context, version uint64) (betasync.RollbackResult, error) {
	var r betasync.RollbackResult
	payload, err := versionJSON(version)
	if err != nil {
		return r, err
	}
	return r, c.request(ctx, SubjectRollback, payload, &r)
}

func versionJSON(version uint64) ([]byte, error) {
	if version == 0 {
		return nil, betasync.Errorf(betasync.EINVALID, "version must be at least 1, got 0")
	}
	return json.Marshal(versionPayload{Version: json.RawMessage(strconv.FormatUint(version, 10))})
}

// historyPayload is betasync.history's payload: {"limit": 20}; absent or 0
// is the default.
type historyPayload struct {
	Limit json.RawMessage `json:"limit,omitempty"`
}

// versionPayload is betasync.history.get's and betasync.rollback's
// payload: {"version": 7}.
type versionPayload struct {
	Version json.RawMessage `json:"version"`
}

// text returns a payload number's text: a JSON number as is, a string's
// content (what a shell script or an HTTP query has), "" when absent.
func text(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		var v string
		if json.Unmarshal(raw, &v) == nil {
			return v
		}
	}
	return s
}

func serveHistory(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
	var in historyPayload
	if err := decode(p, &in); err != nil {
		return nil, err
	}
	limit, err := betasync.ParseLimit(text(in.Limit))
	if err != nil {
		return nil, err
	}
	return cmd.History(ctx, limit)
}

func serveHistoryGet(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
	v, err := versionOf(p)
	if err != nil {
		return nil, err
	}
	return cmd.HistoryVersion(ctx, v)
}

func serveRollback(ctx context.Context, cmd betasync.Commands, p []byte) (any, error) {
	v, err := versionOf(p)
	if err != nil {
		return nil, err
	}
	return cmd.Rollback(ctx, v)
}

// versionOf reads a {"version": N} payload.
func versionOf(p []byte) (uint64, error) {
	var in versionPayload
	if err := decode(p, &in); err != nil {
		return 0, err
	}
	return betasync.ParseVersion(text(in.Version))
}
