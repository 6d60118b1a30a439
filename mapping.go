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
	// only supported betas. Built once per version.
	tables map[string]map[string]string

	canonical []byte
	hash      string
}

// Parse decodes and validates a mapping document strictly. A rejected
// document gets an *Error (code EINVALID) whose message names the offending
// key and why.
func Parse(data []byte) (*Mapping, error) {
	if len(data) > MaxConfigSize {
		return nil, Errorf(EINVALID, "document is %d bytes, more than the %d-byte limit", len(data), MaxConfigSize)
	}
	m := &Mapping{
		aliases:   map[string]string{},
		providers: map[string]map[string]*string{},
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := expectDelim(dec, '{', "document"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for dec.More() {
		key, err := objectKey(dec, "document")
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, Errorf(EINVALID, "key %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case KeyDescription:
			s, err := stringValue(dec, key)
			if err != nil {
				return nil, err
			}
			m.description = s
		case KeyAliases:
			if err := decodeAliases(dec, m.aliases); err != nil {
				return nil, err
			}
		default:
			if err := checkName(key, "provider name"); err != nil {
				return nil, err
			}
			section, err := decodeProvider(dec, key)
			if err != nil {
				return nil, err
			}
			m.providers[key] = section
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, Errorf(EINVALID, "document: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Errorf(EINVALID, "unexpected data after the document's closing brace")
	}
	if !slices.ContainsFunc(CoreProviders, func(p string) bool { return m.providers[p] != nil }) {
		return nil, Errorf(EINVALID, "no core provider: the document must have at least one of %s", strings.Join(CoreProviders, ", "))
	}
	for alias, target := range m.aliases {
		if m.providers[alias] != nil {
			return nil, Errorf(EINVALID, "provider_aliases: alias %q is also a provider section", alias)
		}
		if m.providers[target] == nil {
			return nil, Errorf(EINVALID, "provider_aliases: alias %q points to %q, which has no section", alias, target)
		}
	}
	m.build()
	return m, nil
}

func (m *Mapping) build() {
	m.tables = make(map[string]map[string]string, len(m.providers)+len(m.aliases))
	for p, section := range m.providers {
		t := make(map[string]string, len(section))
		for beta, name := range section {
			if name != nil {
				t[beta] = *name
			}
		}
		m.tables[p] = t
	}
	for alias, target := range m.aliases {
		m.tables[alias] = m.tables[target]
	}
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
		panic("betasync: encoding a validated mapping: " + err.Error())
	}
	m.canonical = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	sum := sha256.Sum256(m.canonical)
	m.hash = hex.EncodeToString(sum[:])
}

func decodeAliases(dec *json.Decoder, into map[string]string) error {
	if err := expectDelim(dec, '{', KeyAliases); err != nil {
		return err
	}
	for dec.More() {
		alias, err := objectKey(dec, KeyAliases)
		if err != nil {
			return err
		}
		if _, dup := into[alias]; dup {
			return Errorf(EINVALID, "provider_aliases: alias %q appears twice", alias)
		}
		if err := checkName(alias, "provider_aliases: alias"); err != nil {
			return err
		}
		target, err := stringValue(dec, KeyAliases+"."+alias)
		if err != nil {
			return err
		}
		into[alias] = target
	}
	if _, err := dec.Token(); err != nil {
		return Errorf(EINVALID, "%s: %v", KeyAliases, err)
	}
	return nil
}

func decodeProvider(dec *json.Decoder, provider string) (map[string]*string, error) {
	where := fmt.Sprintf("provider %q", provider)
	if err := expectDelim(dec, '{', where); err != nil {
		return nil, err
	}
	section := map[string]*string{}
	for dec.More() {
		beta, err := objectKey(dec, where)
		if err != nil {
			return nil, err
		}
		if _, dup := section[beta]; dup {
			return nil, Errorf(EINVALID, "%s: beta %q appears twice", where, beta)
		}
		if err := checkName(beta, where+": beta"); err != nil {
			return nil, err
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, Errorf(EINVALID, "%s: beta %q: %v", where, beta, err)
		}
		switch v := tok.(type) {
		case nil:
			section[beta] = nil
		case string:
			if err := checkName(v, fmt.Sprintf("%s: beta %q: mapped name", where, beta)); err != nil {
				return nil, err
			}
			section[beta] = &v
		default:
			return nil, Errorf(EINVALID, "%s: beta %q: value must be a string or null, not %s", where, beta, describe(tok))
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, Errorf(EINVALID, "%s: %v", where, err)
	}
	return section, nil
}

// checkName rejects names that could never travel in a comma-separated
// header: empty, padded, or holding a comma or a control character.
func checkName(s, what string) error {
	switch {
	case s == "":
		return Errorf(EINVALID, "%s is empty", what)
	case strings.TrimSpace(s) != s:
		return Errorf(EINVALID, "%s %q has leading or trailing white space", what, s)
	case strings.ContainsRune(s, ','):
		return Errorf(EINVALID, "%s %q contains a comma", what, s)
	case strings.ContainsFunc(s, unicode.IsControl):
		return Errorf(EINVALID, "%s %q contains a control character", what, s)
	}
	return nil
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

func stringValue(dec *json.Decoder, key string) (string, error) {
	tok, err := dec.Token()
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

// JSON returns the canonical encoding (sorted keys, no white space). The
// caller must not modify it.
func (m *Mapping) JSON() []byte { return m.canonical }

// MarshalJSON encodes the mapping canonically.
func (m *Mapping) MarshalJSON() ([]byte, error) { return m.canonical, nil }

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
	name, ok = m.tables[provider][beta]
	return name, ok
}

// Summary is a one-line description for logs and the validate command.
func (m *Mapping) Summary() string {
	return fmt.Sprintf("%d providers, %d betas, %d aliases, hash %s", len(m.providers), m.BetaCount(), len(m.aliases), m.hash)
}
