package betasync

import (
	"bytes"
	"encoding/json"
)

// TrimSpace exposes trimSpace to the external tests.
var TrimSpace = trimSpace

// ParseTokens exposes the reference parser, and ParseScan the fast path, to
// the differential fuzz test.
func ParseTokens(data []byte) (*Mapping, error) {
	m, warnings, err := parseTokens(data)
	if err != nil {
		return nil, err
	}
	return finish(m, warnings)
}

// ParseScan returns ok=false when the fast path declines.
func ParseScan(data []byte) (*Mapping, bool, error) {
	if len(data) > MaxConfigSize {
		return nil, false, nil
	}
	m, warnings, ok := parseScan(data)
	if !ok {
		return nil, false, nil
	}
	m, err := finish(m, warnings)
	return m, true, err
}

// LegacyCanonical is the canonical encoding as encoding/json writes it.
func LegacyCanonical(m *Mapping) []byte {
	doc := make(map[string]any, len(m.providers)+2)
	if m.description != "" {
		doc[KeyDescription] = m.description
	}
	if len(m.aliases) > 0 {
		doc[KeyAliases] = m.aliases
	}
	for p, section := range m.providers {
		doc[p] = section
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// UnmarshalSnapshotJSON decodes an envelope the long way, through
// encoding/json, as the reference for the fast path.
func UnmarshalSnapshotJSON(data []byte) (*Snapshot, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, Errorf(EINVALID, "not a mapping envelope: %v", err)
	}
	m, err := Parse(e.Config)
	if err != nil {
		return nil, err
	}
	var s Snapshot
	if err := s.fromEnvelope(e, m); err != nil {
		return nil, err
	}
	return &s, nil
}
