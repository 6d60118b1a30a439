package publisher

import (
	"context"
	"encoding/json"

	"github.com/betasync/betasync"
)

// overridePayload is the payload of betasync.overrides.set
// ({"provider", "beta", "value"}; value a name, or null to drop the beta)
// and of betasync.overrides.delete ({"provider", "beta"}).
type overridePayload struct {
	Provider string          `json:"provider"`
	Beta     string          `json:"beta"`
	Value    json.RawMessage `json:"value,omitempty"` // set only; null arrives as "null", missing as empty
}

// target checks that provider and beta are present.
func (p overridePayload) target() error {
	switch {
	case p.Provider == "":
		return betasync.Errorf(betasync.EUNPROCESSABLE, "provider is required")
	case p.Beta == "":
		return betasync.Errorf(betasync.EUNPROCESSABLE, "beta is required")
	}
	return nil
}

func serveOverrideSet(ctx context.Context, cmd betasync.Commands, payload []byte) (any, error) {
	var in overridePayload
	if err := decode(payload, &in); err != nil {
		return nil, err
	}
	if err := in.target(); err != nil {
		return nil, err
	}
	value, err := betasync.OverrideValue(in.Value)
	if err != nil {
		return nil, err
	}
	return cmd.SetOverride(ctx, in.Provider, in.Beta, value)
}

func serveOverrideDelete(ctx context.Context, cmd betasync.Commands, payload []byte) (any, error) {
	var in overridePayload
	if err := decode(payload, &in); err != nil {
		return nil, err
	}
	if err := in.target(); err != nil {
		return nil, err
	}
	return cmd.DeleteOverride(ctx, in.Provider, in.Beta)
}

func serveOverrideList(ctx context.Context, cmd betasync.Commands, payload []byte) (any, error) {
	if err := decode(payload, nil); err != nil {
		return nil, err
	}
	return cmd.ListOverrides(ctx)
}

// SetOverride asks a worker to forward beta to provider under value, or to
// drop it (value nil).
func (c *Client) SetOverride(ctx context.Context, provider, beta string, value *string) (betasync.OverrideResult, error) {
	var r betasync.OverrideResult
	v, err := json.Marshal(value)
	if err != nil {
		return r, betasync.Errorf(betasync.EINTERNAL, "encoding the override: %v", err)
	}
	payload, err := json.Marshal(overridePayload{Provider: provider, Beta: beta, Value: v})
	if err != nil {
		return r, betasync.Errorf(betasync.EINTERNAL, "encoding the override: %v", err)
	}
	return r, c.request(ctx, SubjectOverrideSet, payload, &r)
}

// DeleteOverride asks a worker to remove an override.
func (c *Client) DeleteOverride(ctx context.Context, provider, beta string) (betasync.OverrideResult, error) {
	var r betasync.OverrideResult
	payload, err := json.Marshal(overridePayload{Provider: provider, Beta: beta})
	if err != nil {
		return r, betasync.Errorf(betasync.EINTERNAL, "encoding the override: %v", err)
	}
	return r, c.request(ctx, SubjectOverrideDelete, payload, &r)
}

// ListOverrides asks a worker for the stored overrides.
func (c *Client) ListOverrides(ctx context.Context) (betasync.OverrideList, error) {
	var r betasync.OverrideList
	return r, c.request(ctx, SubjectOverrideList, nil, &r)
}
