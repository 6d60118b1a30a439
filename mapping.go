// Package betasync holds the domain of betasync: the beta-header mapping
// (parsing, validation, canonical hashing and filtering), the config.updated
// envelope, the command replies, and the error codes every package shares.
//
// The subpackages wrap one dependency each: kv (JetStream KV), publisher
// (NATS subjects and the micro service), httpapi (the admin API), subscriber
// (what pods embed), worker (fetching and scheduling), embednats (the
// in-process nats-server) and metrics (Prometheus).
package betasync

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// MaxConfigSize is the largest mapping document accepted, in bytes.
const MaxConfigSize = 1 << 20

// Reserved top-level keys of the mapping document; every other key is a
// provider.
const (
	KeyDescription = "description"
	KeyAliases     = "provider_aliases"
)

// CoreProviders are the providers of which a valid document names at least
// one (LiteLLM's integrity check).
var CoreProviders = []string{"anthropic", "azure_ai", "bedrock", "bedrock_converse", "vertex_ai"}

//go:embed default_mapping.json
var defaultJSON []byte

var defaultMapping = mustParse(defaultJSON)

// Default returns the mapping compiled into the binary. It is the fallback of
// every pod and the first version the worker stores.
func Default() *Mapping { return defaultMapping }

func mustParse(b []byte) *Mapping {
	m, err := Parse(b)
	if err != nil {
		panic("betasync: embedded default mapping: " + err.Error())
	}
	return m
}

// Mapping is one immutable, validated version of the document
// provider -> beta -> provider's name (or unsupported). It is safe for
// concurrent use; lookups never allocate.
type Mapping struct {
	description string
	aliases     map[string]string
	providers   map[string]map[string]*string // as written (nil = unsupported)

	// tables answers lookups: provider or alias -> beta -> name, holding
	// only supported betas. Built once per version. An alias maps to its
	// target's table (nil without one) and hides a section of its name.
	tables map[string]map[string]*string

	warnings []string
	// canonical is the canonical encoding; when the source was canonical
	// already, a substring of it, as the keys and names are.
	canonical string
	hash      string

	// spans locate, in canonical, the sections that a later version's
	// decode may share when it carries them byte for byte (see
	// scanner.reuse); set only when canonical is the parsed source itself.
	spans []sectionSpan
}

// Parse decodes and validates a mapping document. The structure is strict,
// as are the names sent to providers: a rejected document gets an *Error
// (code EINVALID) whose message names the offending key and why. Oddities
// LiteLLM tolerates are accepted with the same meaning LiteLLM gives them and
// reported by Warnings: a repeated key (the last one wins, as with Python's
// json.loads), a beta or provider name no request can match, an alias to a
// provider without a section (it filters to nothing), and an alias with the
// name of a section (aliases are resolved first, so the section is
// unreachable).
func Parse(data []byte) (*Mapping, error) {
	if len(data) > MaxConfigSize {
		return nil, Errorf(EINVALID, "document is %d bytes, more than the %d-byte limit", len(data), MaxConfigSize)
	}
	m, warnings, ok := parseScan(data)
	if !ok {
		var err error
		if m, warnings, err = parseTokens(data); err != nil {
			return nil, err
		}
	}
	return finish(m, warnings)
}

// parseTokens is the reference parser: a walk over json.Decoder tokens that
// accepts every document Parse accepts and names the fault of every other.
// Parse runs it only when its fast path (parseScan) declines.
func parseTokens(data []byte) (*Mapping, []string, error) {
	var p parser
	dec := newDecoder(data)
	top, err := p.object(dec, "document", "", "key", topLabel)
	if err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, Errorf(EINVALID, "unexpected data after the document's closing brace")
	}
	m := &Mapping{
		aliases:   map[string]string{},
		providers: map[string]map[string]*string{},
	}
	for _, key := range top.keys {
		raw := top.values[key]
		switch key {
		case KeyDescription:
			if m.description, err = stringValue(raw, key); err != nil {
				return nil, nil, err
			}
		case KeyAliases:
			if err := p.aliases(raw, m.aliases); err != nil {
				return nil, nil, err
			}
		default:
			p.checkCallerName(key, "provider name")
			section, err := p.section(raw, key)
			if err != nil {
				return nil, nil, err
			}
			m.providers[key] = section
		}
	}
	return m, p.warnings, nil
}

// finish checks what concerns the whole document, adds its warnings and
// builds the lookup tables and the canonical encoding.
func finish(m *Mapping, warnings []string) (*Mapping, error) {
	p := parser{warnings: warnings}
	if !slices.ContainsFunc(CoreProviders, func(p string) bool { return m.providers[p] != nil }) {
		return nil, Errorf(EINVALID, "no core provider: the document must have at least one of %s", strings.Join(CoreProviders, ", "))
	}
	for alias, target := range m.aliases {
		if m.providers[alias] != nil && alias != target {
			p.warnf("%s: alias %q has the name of a provider section; aliases are resolved first, so section %q is unreachable", KeyAliases, alias, alias)
		}
		_, targetIsAlias := m.aliases[target]
		if m.providers[target] != nil {
			if targetIsAlias && m.aliases[target] != target {
				p.warnf("%s: alias %q points to %q, which is also an alias; aliases are resolved once, so %q uses section %q", KeyAliases, alias, target, alias, target)
			}
			continue
		}
		if targetIsAlias && alias != target {
			p.warnf("%s: alias %q points to %q, which is an alias without a section (aliases are resolved once); requests for %q get no betas", KeyAliases, alias, target, alias)
		} else {
			p.warnf("%s: alias %q points to %q, which has no section; requests for %q get no betas", KeyAliases, alias, target, alias)
		}
	}
	slices.Sort(p.warnings)
	m.warnings = slices.Compact(p.warnings)
	m.build()
	return m, nil
}

func (m *Mapping) build() {
	// LiteLLM resolves an alias once, before looking for a section: the
	// alias's table is its target's section (none: nothing passes), even
	// when a section has the alias's name. Tables share the sections; a
	// nil name is an unsupported beta.
	m.tables = maps.Clone(m.providers)
	for alias, target := range m.aliases {
		m.tables[alias] = m.providers[target]
	}

	if m.canonical == "" { // the scanner sets it, and the hash, when the source is canonical already
		b := m.appendCanonical(make([]byte, 0, m.canonicalSizeHint()))
		m.canonical = string(b)
		m.hash = hashOf(b)
	}
}

// hashOf is the hex sha256 of a canonical encoding.
func hashOf(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// parser collects the warnings of one Parse.
type parser struct {
	warnings []string
}

func (p *parser) warnf(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

// members are a JSON object's members: each key once, with the raw value it
// was given last, as Python's json.loads keeps them.
type members struct {
	keys   []string // in order of first appearance
	values map[string]json.RawMessage
}

// object reads a JSON object from dec, keeping each value raw so that only
// the value that wins is validated. where names the object in errors, prefix
// starts its warnings, noun names its keys, and label names a key's value in
// errors.
func (p *parser) object(dec *json.Decoder, where, prefix, noun string, label func(string) string) (members, error) {
	if err := expectDelim(dec, '{', where); err != nil {
		return members{}, err
	}
	obj := members{values: map[string]json.RawMessage{}}
	var seen map[string]int
	for dec.More() {
		key, err := objectKey(dec, where)
		if err != nil {
			return members{}, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return members{}, Errorf(EINVALID, "%s: not valid JSON: %v", label(key), err)
		}
		if _, dup := obj.values[key]; dup {
			if seen == nil {
				seen = map[string]int{}
			}
			seen[key]++
		} else {
			obj.keys = append(obj.keys, key)
		}
		obj.values[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return members{}, Errorf(EINVALID, "%s: not valid JSON: %v", where, err)
	}
	for _, key := range obj.keys {
		switch n := seen[key] + 1; {
		case n == 2:
			p.warnf("%s%s %q appears twice; the last one wins", prefix, noun, key)
		case n > 2:
			p.warnf("%s%s %q appears %d times; the last one wins", prefix, noun, key, n)
		}
	}
	return obj, nil
}

// topLabel names a top-level member in errors.
func topLabel(key string) string {
	if key == KeyDescription || key == KeyAliases {
		return key
	}
	return fmt.Sprintf("provider %q", key)
}

func (p *parser) aliases(raw json.RawMessage, into map[string]string) error {
	obj, err := p.object(newDecoder(raw), KeyAliases, KeyAliases+": ", "alias", func(alias string) string { return KeyAliases + "." + alias })
	if err != nil {
		return err
	}
	for _, alias := range obj.keys {
		target, err := stringValue(obj.values[alias], KeyAliases+"."+alias)
		if err != nil {
			return err
		}
		p.checkCallerName(alias, KeyAliases+": alias")
		into[alias] = target
	}
	return nil
}

func (p *parser) section(raw json.RawMessage, provider string) (map[string]*string, error) {
	where := fmt.Sprintf("provider %q", provider)
	label := func(beta string) string { return fmt.Sprintf("%s: beta %q", where, beta) }
	obj, err := p.object(newDecoder(raw), where, where+": ", "beta", label)
	if err != nil {
		return nil, err
	}
	section := make(map[string]*string, len(obj.keys))
	for _, beta := range obj.keys {
		tok, err := scalar(obj.values[beta])
		if err != nil {
			return nil, Errorf(EINVALID, "%s: not valid JSON: %v", label(beta), err)
		}
		switch v := tok.(type) {
		case nil:
			section[beta] = nil
		case string:
			if err := checkName(v, label(beta)+": mapped name"); err != nil {
				return nil, err
			}
			section[beta] = &v
		default:
			return nil, Errorf(EINVALID, "%s: value must be a string or null, not %s", label(beta), describe(tok))
		}
		p.checkBeta(where, beta)
	}
	return section, nil
}

// Name flaws: what makes a name unfit to travel as one item of a
// comma-separated header value.
const (
	flawEmpty   = "is empty"
	flawPadded  = "has leading or trailing white space"
	flawComma   = "contains a comma"
	flawControl = "contains a control character"
)

// nameFlaw returns the first flaw of s, or "" when it has none. White space
// is what filtering strips from items (Python's str.isspace).
func nameFlaw(s string) string {
	if plainName(s) {
		return ""
	}
	switch {
	case s == "":
		return flawEmpty
	case trimSpace(s) != s:
		return flawPadded
	case strings.ContainsRune(s, ','):
		return flawComma
	case strings.ContainsFunc(s, unicode.IsControl):
		return flawControl
	}
	return ""
}

// plainName reports whether s is printable ASCII without a comma or a
// space, and so has no flaw: the common case, checked quickly.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return s != ""
}

// checkName rejects a name sent to a provider that could corrupt the header
// it travels in: empty, padded, or holding a comma or a control character.
func checkName(s, what string) error {
	switch flaw := nameFlaw(s); flaw {
	case "":
		return nil
	case flawEmpty:
		return Errorf(EINVALID, "%s %s", what, flaw)
	default:
		return Errorf(EINVALID, "%s %q %s", what, s, flaw)
	}
}

// checkBeta warns about a beta key that requests can (almost) never match.
// LiteLLM accepts such keys, and so do we, with the same meaning.
func (p *parser) checkBeta(where, beta string) {
	flaw := nameFlaw(beta)
	var why string
	switch flaw {
	case "":
		return
	case flawEmpty:
		why = "no header item can match it"
	case flawPadded:
		why = "items are stripped before the lookup, so it can never match"
	case flawComma:
		why = "header values are split on commas, so no header item can match it"
	default:
		why = "it is unlikely to match any request"
	}
	p.warnf("%s: beta %q %s; %s", where, beta, flaw, why)
}

// checkCallerName warns about a provider or alias name that is unlikely to be
// the one a caller passes.
func (p *parser) checkCallerName(name, what string) {
	if flaw := nameFlaw(name); flaw != "" {
		p.warnf("%s %q %s; only a caller passing exactly this name reaches it", what, name, flaw)
	}
}

func newDecoder(data []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec
}

func expectDelim(dec *json.Decoder, want json.Delim, where string) error {
	tok, err := dec.Token()
	if err != nil {
		return Errorf(EINVALID, "%s: not valid JSON: %v", where, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return Errorf(EINVALID, "%s must be a JSON object, not %s", where, describe(tok))
	}
	return nil
}

func objectKey(dec *json.Decoder, where string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", Errorf(EINVALID, "%s: not valid JSON: %v", where, err)
	}
	key, ok := tok.(string)
	if !ok {
		return "", Errorf(EINVALID, "%s: expected a key, found %s", where, describe(tok))
	}
	return key, nil
}

// scalar returns raw, a JSON value Decode has already checked, as the
// json.Token a Decoder would return for its first token: without a Decoder,
// which costs a buffer per value.
func scalar(raw json.RawMessage) (json.Token, error) {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '{', '[':
		return json.Delim(raw[0]), nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return s, nil
	}
	return json.Number(raw), nil
}

func stringValue(raw json.RawMessage, key string) (string, error) {
	tok, err := scalar(raw)
	if err != nil {
		return "", Errorf(EINVALID, "%s: not valid JSON: %v", key, err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", Errorf(EINVALID, "%s must be a string, not %s", key, describe(tok))
	}
	return s, nil
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		if v == '{' {
			return "an object"
		}
	}
	return fmt.Sprintf("%v", tok)
}

// Hash is the hex sha256 of the canonical encoding: equal content has an
// equal hash whatever the key order or white space of the source.
func (m *Mapping) Hash() string { return m.hash }

// JSON returns the canonical encoding (sorted keys, no white space), a
// copy the caller may keep or modify.
func (m *Mapping) JSON() []byte { return []byte(m.canonical) }

// MarshalJSON encodes the mapping canonically.
func (m *Mapping) MarshalJSON() ([]byte, error) { return []byte(m.canonical), nil }

// Description returns the document's description, if any.
func (m *Mapping) Description() string { return m.description }

// Providers returns the provider sections' names, sorted.
func (m *Mapping) Providers() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for p := range m.providers {
			if !yield(p) {
				return
			}
		}
	})
}

// Aliases returns a copy of provider_aliases (alias -> provider).
func (m *Mapping) Aliases() map[string]string {
	return maps.Clone(m.aliases)
}

// Section returns a copy of a provider's section as written (a nil value
// means unsupported), after resolving aliases; ok is false without one.
func (m *Mapping) Section(provider string) (section map[string]*string, ok bool) {
	if target, isAlias := m.aliases[provider]; isAlias {
		provider = target
	}
	s, ok := m.providers[provider]
	if !ok {
		return nil, false
	}
	return maps.Clone(s), true
}

// BetaCount returns the number of beta entries across all providers,
// supported or not.
func (m *Mapping) BetaCount() int {
	n := 0
	for _, s := range m.providers {
		n += len(s)
	}
	return n
}

// Lookup returns the name provider knows beta by; ok is false when the
// provider has no section, the beta is absent, or it is mapped to null.
func (m *Mapping) Lookup(provider, beta string) (name string, ok bool) {
	if p := m.tables[provider][beta]; p != nil {
		return *p, true
	}
	return "", false
}

// Warnings returns, sorted, what Parse accepted but found odd, each naming
// the key and why; nil when nothing is. Warnings do not affect the hash.
func (m *Mapping) Warnings() []string { return slices.Clone(m.warnings) }

// Summary is a one-line description for logs and the validate command.
func (m *Mapping) Summary() string {
	var warnings string
	switch n := len(m.warnings); n {
	case 0:
	case 1:
		warnings = ", 1 warning"
	default:
		warnings = fmt.Sprintf(", %d warnings", n)
	}
	return fmt.Sprintf("%d providers, %d betas, %d aliases%s, hash %s", len(m.providers), m.BetaCount(), len(m.aliases), warnings, m.hash)
}
