package betasync

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// SourceOverride is the source of a version stored because an override was
// set or deleted: the same upstream document with the new overrides merged.
const SourceOverride = "override"

// MaxOverrideName bounds an override's provider, beta and mapped name, in
// bytes.
const MaxOverrideName = 256

// MaxOverrideBody bounds the body of an override request, in bytes.
const MaxOverrideBody = 4 << 10

// Overrides are the operator's runtime overrides, provider section ->
// beta -> the name to forward it under (nil: drop it). They are merged over
// every document the worker stores, and an override wins. The provider is
// always a section name (aliases are resolved when an override is set).
// Its JSON form, {"provider": {"beta": "name" | null}}, is what KV stores
// under betasync_state/overrides and what the list command answers.
type Overrides map[string]map[string]*string

// Clone returns a deep copy.
func (o Overrides) Clone() Overrides {
	out := make(Overrides, len(o))
	for p, betas := range o {
		out[p] = maps.Clone(betas)
	}
	return out
}

// Set records an override.
func (o Overrides) Set(provider, beta string, value *string) {
	if o[provider] == nil {
		o[provider] = map[string]*string{}
	}
	o[provider][beta] = value
}

// Delete removes an override; it reports whether there was one.
func (o Overrides) Delete(provider, beta string) bool {
	if _, ok := o[provider][beta]; !ok {
		return false
	}
	delete(o[provider], beta)
	if len(o[provider]) == 0 {
		delete(o, provider)
	}
	return true
}

// Len returns the number of overrides.
func (o Overrides) Len() int {
	n := 0
	for _, betas := range o {
		n += len(betas)
	}
	return n
}

// OverrideRef names one override and its value.
type OverrideRef struct {
	Provider string  `json:"provider"`
	Beta     string  `json:"beta"`
	Value    *string `json:"value"`
}

// AppliedOverride is one override merged into a version: the value in force
// and what the upstream document had there, so that the upstream document
// can be rebuilt from the stored version (to delete an override, or to merge
// the current overrides over an older version on rollback).
type AppliedOverride struct {
	Value    *string `json:"value"`                     // the override: a name, or null (dropped)
	Upstream *string `json:"upstream"`                  // the upstream value: a name, or null (unsupported or absent)
	Absent   bool    `json:"upstream_absent,omitempty"` // the upstream section had no such beta
}

// AppliedOverrides are the overrides merged into a version, section -> beta.
// They travel in the envelope as "overrides" (omitted when there are none).
type AppliedOverrides map[string]map[string]AppliedOverride

// Values returns the overrides in force, section -> beta -> value.
func (a AppliedOverrides) Values() Overrides {
	if len(a) == 0 {
		return nil
	}
	out := Overrides{}
	for p, betas := range a {
		for beta, ap := range betas {
			out.Set(p, beta, ap.Value)
		}
	}
	return out
}

// Redundant returns, sorted, the overrides the upstream document already
// agrees with: deleting them would change nothing.
func (a AppliedOverrides) Redundant() []OverrideRef {
	var out []OverrideRef
	for p, betas := range a {
		for beta, ap := range betas {
			if !ap.Absent && sameName(ap.Value, ap.Upstream) {
				out = append(out, OverrideRef{Provider: p, Beta: beta, Value: ap.Value})
			}
		}
	}
	SortOverrideRefs(out)
	return out
}

// Equal reports whether a and b record the same overrides over the same
// upstream values.
func (a AppliedOverrides) Equal(b AppliedOverrides) bool {
	if len(a) != len(b) {
		return false
	}
	for p, betas := range a {
		if !maps.EqualFunc(betas, b[p], func(x, y AppliedOverride) bool {
			return x.Absent == y.Absent && sameName(x.Value, y.Value) && sameName(x.Upstream, y.Upstream)
		}) {
			return false
		}
	}
	return true
}

// check verifies that every applied override is what m has in its section.
func (a AppliedOverrides) check(m *Mapping) error {
	for p, betas := range a {
		section, ok := m.providers[p]
		if !ok {
			return Errorf(EINVALID, "overrides: provider %q has no section in the config", p)
		}
		for beta, ap := range betas {
			if v, ok := section[beta]; !ok || !sameName(v, ap.Value) {
				return Errorf(EINVALID, "overrides: provider %q: beta %q does not match the config", p, beta)
			}
		}
	}
	return nil
}

func sameName(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// SortOverrideRefs sorts refs by provider, then beta.
func SortOverrideRefs(refs []OverrideRef) {
	slices.SortFunc(refs, func(x, y OverrideRef) int {
		return cmp.Or(cmp.Compare(x.Provider, y.Provider), cmp.Compare(x.Beta, y.Beta))
	})
}

// CheckOverride validates an override against m with the mapping's rules:
// the provider must be a section or an alias of one (the section it
// resolves to is returned), the beta a key a request can match, and a
// mapped name one that cannot corrupt the header. Errors are EINVALID and
// name what is wrong.
func (m *Mapping) CheckOverride(provider, beta string, value *string) (section string, err error) {
	section = provider
	if target, isAlias := m.aliases[provider]; isAlias {
		section = target
	}
	switch {
	case provider == "":
		return "", Errorf(EINVALID, "provider is empty")
	case len(provider) > MaxOverrideName:
		return "", Errorf(EINVALID, "provider is longer than %d bytes", MaxOverrideName)
	case m.providers[section] == nil:
		return "", Errorf(EINVALID, "provider %q is neither a section nor an alias of the current mapping (providers: %v)", provider, m.Providers())
	}
	if flaw := nameFlaw(beta); flaw != "" {
		return "", Errorf(EINVALID, "beta %q %s; no request can match it", beta, flaw)
	}
	if len(beta) > MaxOverrideName {
		return "", Errorf(EINVALID, "beta is longer than %d bytes", MaxOverrideName)
	}
	if value != nil {
		if err := checkName(*value, fmt.Sprintf("provider %q: beta %q: value", section, beta)); err != nil {
			return "", err
		}
		if len(*value) > MaxOverrideName {
			return "", Errorf(EINVALID, "value is longer than %d bytes", MaxOverrideName)
		}
	}
	return section, nil
}

// Merged is the result of WithOverrides.
type Merged struct {
	*Mapping                  // the effective mapping
	Applied  AppliedOverrides // nil when no override applies
	// Skipped are overrides whose provider has no section in the document:
	// they stay stored and apply again once the section is back.
	Skipped []OverrideRef
}

// WithOverrides builds the effective document, m with o merged over it (an
// override wins), and validates it by parsing it again. m must be an
// upstream document (without overrides: see Snapshot.Upstream).
func (m *Mapping) WithOverrides(o Overrides) (Merged, error) {
	out := Merged{Mapping: m}
	if o.Len() == 0 {
		return out, nil
	}
	sections := m.sections()
	applied := AppliedOverrides{}
	for p, betas := range o {
		section, ok := sections[p]
		for beta, v := range betas {
			if !ok {
				out.Skipped = append(out.Skipped, OverrideRef{Provider: p, Beta: beta, Value: v})
				continue
			}
			prev, had := section[beta]
			if applied[p] == nil {
				applied[p] = map[string]AppliedOverride{}
			}
			applied[p][beta] = AppliedOverride{Value: v, Upstream: prev, Absent: !had}
			section[beta] = v
		}
	}
	SortOverrideRefs(out.Skipped)
	if len(applied) == 0 {
		return out, nil
	}
	eff, err := m.reparse(sections)
	if err != nil {
		return Merged{}, fmt.Errorf("merging the overrides: %w", err)
	}
	out.Mapping, out.Applied = eff, applied
	return out, nil
}

// sections returns a deep copy of the provider sections.
func (m *Mapping) sections() map[string]map[string]*string {
	out := make(map[string]map[string]*string, len(m.providers))
	for p, s := range m.providers {
		out[p] = maps.Clone(s)
	}
	return out
}

// reparse builds the document of m with other sections and parses it.
func (m *Mapping) reparse(sections map[string]map[string]*string) (*Mapping, error) {
	doc := make(map[string]any, len(sections)+2)
	if m.description != "" {
		doc[KeyDescription] = m.description
	}
	if len(m.aliases) > 0 {
		doc[KeyAliases] = m.aliases
	}
	for p, s := range sections {
		doc[p] = s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, Errorf(EINTERNAL, "encoding a mapping: %v", err)
	}
	return Parse(buf.Bytes())
}

// Upstream returns the document this version was built from, before its
// overrides were merged: the version's own mapping when it has none.
func (s *Snapshot) Upstream() (*Mapping, error) {
	if len(s.Overrides) == 0 {
		return s.Mapping, nil
	}
	sections := s.sections()
	for p, betas := range s.Overrides {
		section, ok := sections[p]
		if !ok {
			return nil, Errorf(EINVALID, "version %d: override of provider %q without a section", s.Version, p)
		}
		for beta, ap := range betas {
			if ap.Absent {
				delete(section, beta)
			} else {
				section[beta] = ap.Upstream
			}
		}
	}
	return s.reparse(sections)
}

// WithOverrides returns the version that merges o over s's upstream
// document: its overrides replaced by o. Source, FetchedAt, URL and the
// validators are s's, as they describe the upstream document; set Source
// and Version as fits. Skipped lists the overrides that did not apply.
func (s *Snapshot) WithOverrides(o Overrides) (next *Snapshot, skipped []OverrideRef, err error) {
	up, err := s.Upstream()
	if err != nil {
		return nil, nil, err
	}
	m, err := up.WithOverrides(o)
	if err != nil {
		return nil, nil, err
	}
	next = &Snapshot{
		Mapping:      m.Mapping,
		Source:       s.Source,
		FetchedAt:    s.FetchedAt,
		URL:          s.URL,
		ETag:         s.ETag,
		LastModified: s.LastModified,
		Overrides:    m.Applied,
	}
	return next, m.Skipped, nil
}

// SameContent reports whether s and o carry the same effective document
// and the same overrides over the same upstream values: storing one over
// the other would change nothing.
func (s *Snapshot) SameContent(o *Snapshot) bool {
	return s != nil && o != nil && s.Hash() == o.Hash() && s.Overrides.Equal(o.Overrides)
}

// ParseOverrideBody reads the body of an override request, {"value":
// "name"} or {"value": null}, strictly: a body that is not one JSON object,
// has other members, or trailing data is EINVALID; a missing value is
// EUNPROCESSABLE. It does not check the name (see CheckOverride).
func ParseOverrideBody(body []byte) (*string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, Errorf(EUNPROCESSABLE, `body is required: {"value": "provider-name"} or {"value": null}`)
	}
	if len(body) > MaxOverrideBody {
		return nil, Errorf(EINVALID, "body is larger than %d bytes", MaxOverrideBody)
	}
	var in struct {
		Value json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, Errorf(EINVALID, `body must be {"value": "provider-name"} or {"value": null}: %v`, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Errorf(EINVALID, "unexpected data after the body's JSON object")
	}
	return OverrideValue(in.Value)
}

// OverrideValue reads an override's "value" member as received: missing
// (empty) is EUNPROCESSABLE, null is nil (drop), a string is the name;
// anything else is EINVALID.
func OverrideValue(raw json.RawMessage) (*string, error) {
	if len(raw) == 0 {
		return nil, Errorf(EUNPROCESSABLE, `value is required: a provider name, or null to drop the beta`)
	}
	tok, err := scalar(raw)
	if err != nil {
		return nil, Errorf(EINVALID, "value: not valid JSON: %v", err)
	}
	switch v := tok.(type) {
	case nil:
		return nil, nil
	case string:
		return &v, nil
	}
	return nil, Errorf(EINVALID, "value must be a string or null, not %s", describe(tok))
}

// OverrideResult answers setting or deleting an override.
type OverrideResult struct {
	Status    string    `json:"status"`
	Message   string    `json:"message"`
	Provider  string    `json:"provider"` // the section (an alias is resolved)
	Beta      string    `json:"beta"`
	Value     *string   `json:"value"`             // the value set; null when dropping or deleted
	Deleted   bool      `json:"deleted,omitempty"` // the override was deleted
	Overrides Overrides `json:"overrides"`         // every override now stored
	Version   uint64    `json:"version"`           // the version now stored
	Changed   bool      `json:"changed"`           // a new version was stored
	Hash      string    `json:"hash"`
	Changes   Changes   `json:"changes,omitempty"` // what the new version changed
	Timestamp time.Time `json:"timestamp"`
}

// OverrideList answers listing the overrides.
type OverrideList struct {
	Status    string    `json:"status"`
	Overrides Overrides `json:"overrides"` // every override stored, {} when none
	// Inactive are stored overrides the current version does not carry
	// (their provider has no section upstream any more).
	Inactive []OverrideRef `json:"inactive,omitempty"`
	Version  uint64        `json:"version"` // the current version
	Hash     string        `json:"hash"`
}
