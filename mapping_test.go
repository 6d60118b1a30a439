package betasync_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

// upstreamProviders are the provider sections of testdata/litellm_upstream.json.
var upstreamProviders = []string{
	"anthropic", "azure_ai", "bedrock", "bedrock_converse", "bedrock_mantle", "databricks", "vertex_ai",
}

// fixture returns testdata/litellm_upstream.json, a document shaped like
// LiteLLM's anthropic_beta_headers_config.json.
func fixture(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/litellm_upstream.json")
	require.NoError(tb, err)
	return b
}

func parseFixture(tb testing.TB) *betasync.Mapping {
	tb.Helper()
	m, err := betasync.Parse(fixture(tb))
	require.NoError(tb, err)
	return m
}

func mustParseDoc(tb testing.TB, doc string) *betasync.Mapping {
	tb.Helper()
	m, err := betasync.Parse([]byte(doc))
	require.NoError(tb, err, "document: %s", doc)
	return m
}

// requireInvalid asserts err is an EINVALID *betasync.Error whose message
// holds every one of wants.
func requireInvalid(t *testing.T, err error, wants ...string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, betasync.EINVALID, betasync.ErrorCode(err), "error: %v", err)
	var e *betasync.Error
	require.ErrorAs(t, err, &e)
	for _, w := range wants {
		assert.Contains(t, e.Message, w)
	}
}

func TestParseFixtureRoundTrip(t *testing.T) {
	m := parseFixture(t)

	assert.Equal(t, upstreamProviders, m.Providers())
	assert.Empty(t, m.Aliases())
	assert.True(t, strings.HasPrefix(m.Description(), "Upstream-shaped test document"))
	assert.Positive(t, m.BetaCount())
	assert.Contains(t, m.Summary(), "7 providers")
	assert.Contains(t, m.Summary(), m.Hash())
	assert.Nil(t, m.Warnings())
	assert.NotContains(t, m.Summary(), "warning")

	t.Run("hash is the sha256 of the canonical JSON", func(t *testing.T) {
		sum := sha256.Sum256(m.JSON())
		assert.Equal(t, hex.EncodeToString(sum[:]), m.Hash())
		assert.Len(t, m.Hash(), 64)
	})

	t.Run("canonical JSON is compact, sorted and valid", func(t *testing.T) {
		js := m.JSON()
		require.True(t, json.Valid(js))
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, js))
		assert.Equal(t, compact.String(), string(js), "no insignificant white space")
		assert.True(t, bytes.HasPrefix(js, []byte(`{"anthropic":{"advanced-tool-use-2025-11-20":"advanced-tool-use-2025-11-20","advisor-tool-2026-03-01":`)), "got %.120s", js)
		assert.Contains(t, string(js), `"bash_20241022":null`)
		// The description holds an apostrophe; nothing is HTML-escaped.
		assert.Contains(t, string(js), `LiteLLM's key order`)

		mj, err := m.MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, js, mj)
	})

	t.Run("re-parsing the canonical JSON keeps the hash", func(t *testing.T) {
		m2, err := betasync.Parse(m.JSON())
		require.NoError(t, err)
		assert.Equal(t, m.Hash(), m2.Hash())
		assert.Equal(t, m.JSON(), m2.JSON())
		assert.Equal(t, m.Providers(), m2.Providers())
		assert.Equal(t, m.BetaCount(), m2.BetaCount())
		for _, p := range m.Providers() {
			s1, ok1 := m.Section(p)
			s2, ok2 := m2.Section(p)
			require.True(t, ok1)
			require.True(t, ok2)
			assert.Equal(t, s1, s2, "provider %s", p)
		}
	})

	t.Run("sections and lookups agree", func(t *testing.T) {
		for _, p := range m.Providers() {
			section, ok := m.Section(p)
			require.True(t, ok, p)
			for beta, name := range section {
				got, ok := m.Lookup(p, beta)
				if name == nil {
					assert.False(t, ok, "%s/%s is null and must not be found", p, beta)
					continue
				}
				assert.True(t, ok, "%s/%s", p, beta)
				assert.Equal(t, *name, got, "%s/%s", p, beta)
			}
		}
		name, ok := m.Lookup("bedrock", "advanced-tool-use-2025-11-20")
		assert.True(t, ok)
		assert.Equal(t, "tool-search-tool-2025-10-19", name)
		_, ok = m.Lookup("bedrock", "interleaved-thinking-2025-05-14")
		assert.False(t, ok, "mapped to null")
		_, ok = m.Lookup("openai", "context-1m-2025-08-07")
		assert.False(t, ok, "no such provider")
		_, ok = m.Section("openai")
		assert.False(t, ok)
	})

	t.Run("section is a copy", func(t *testing.T) {
		s, ok := m.Section("bedrock")
		require.True(t, ok)
		delete(s, "context-1m-2025-08-07")
		other := "mutated"
		s["advanced-tool-use-2025-11-20"] = &other
		name, ok := m.Lookup("bedrock", "context-1m-2025-08-07")
		assert.True(t, ok)
		assert.Equal(t, "context-1m-2025-08-07", name)
		s2, _ := m.Section("bedrock")
		assert.Equal(t, "tool-search-tool-2025-10-19", *s2["advanced-tool-use-2025-11-20"])
	})
}

// reencode writes v as JSON with every object's keys in reverse sorted
// order and the given indentation, to build documents that differ from the
// fixture only in key order and white space.
func reencode(tb testing.TB, v any, indent string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	var write func(v any, depth int)
	nl := func(depth int) {
		if indent != "" {
			buf.WriteByte('\n')
			buf.WriteString(strings.Repeat(indent, depth))
		}
	}
	write = func(v any, depth int) {
		obj, ok := v.(map[string]any)
		if !ok {
			b, err := json.Marshal(v)
			require.NoError(tb, err)
			buf.Write(b)
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(keys)))
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			nl(depth + 1)
			kb, err := json.Marshal(k)
			require.NoError(tb, err)
			buf.Write(kb)
			buf.WriteString(" :  ")
			write(obj[k], depth+1)
		}
		nl(depth)
		buf.WriteByte('}')
	}
	write(v, 0)
	return buf.Bytes()
}

func TestParseHashIgnoresFormatting(t *testing.T) {
	raw := fixture(t)
	base := parseFixture(t)

	var tree any
	require.NoError(t, json.Unmarshal(raw, &tree))
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, raw))
	var tabbed bytes.Buffer
	require.NoError(t, json.Indent(&tabbed, raw, "\t", "\t"))
	sorted, err := json.Marshal(tree)
	require.NoError(t, err)

	tests := []struct {
		name string
		doc  []byte
	}{
		{"compact", compact.Bytes()},
		{"indented with tabs", tabbed.Bytes()},
		{"keys sorted", sorted},
		{"keys reversed, odd spacing", reencode(t, tree, "   ")},
		{"keys reversed, one line", reencode(t, tree, "")},
		{"surrounding white space", append(append([]byte(" \r\n\t"), raw...), " \n\n"...)},
		{"escaped key", bytes.Replace(raw, []byte(`"anthropic": {`), []byte(`"\u0061nthropic": {`), 1)},
		{"escaped value", bytes.Replace(raw, []byte(`"compact-2026-01-12": "compact-2026-01-12"`), []byte(`"compact-2026-01-12": "compact\u002d2026-01-12"`), 1)},
		{"canonical form", base.JSON()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEqual(t, raw, tt.doc, "the variant must differ from the fixture")
			m, err := betasync.Parse(tt.doc)
			require.NoError(t, err)
			assert.Equal(t, base.Hash(), m.Hash())
			assert.Equal(t, base.JSON(), m.JSON())
		})
	}
}

func TestParseHashChangesWithContent(t *testing.T) {
	const small = `{"description":"d","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":"a","b":null},"bedrock":{"a":"x"}}`
	raw := fixture(t)
	rawHash := parseFixture(t).Hash()
	smallHash := mustParseDoc(t, small).Hash()

	replaceOnce := func(old, new string) []byte {
		t.Helper()
		require.Contains(t, string(raw), old)
		return bytes.Replace(raw, []byte(old), []byte(new), 1)
	}

	tests := []struct {
		name string
		doc  []byte
		base string
	}{
		{"fixture: mapped name changed", replaceOnce(`"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"`, `"advanced-tool-use-2025-11-20": "advanced-tool-use-2025-11-20"`), rawHash},
		{"fixture: null becomes a name", replaceOnce(`"bash_20241022": null`, `"bash_20241022": "bash_20241022"`), rawHash},
		{"fixture: name becomes null", replaceOnce(`"context-1m-2025-08-07": "context-1m-2025-08-07"`, `"context-1m-2025-08-07": null`), rawHash},
		{"fixture: beta added", replaceOnce(`"bash_20241022": null`, `"bash_20241022": null, "new-beta-2099-01-01": "new-beta-2099-01-01"`), rawHash},
		{"fixture: description changed", replaceOnce(`Upstream-shaped`, `upstream-shaped`), rawHash},
		{"small: mapped name changed", []byte(`{"description":"d","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":"a","b":null},"bedrock":{"a":"y"}}`), smallHash},
		{"small: beta removed", []byte(`{"description":"d","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":"a"},"bedrock":{"a":"x"}}`), smallHash},
		{"small: beta moved to another provider", []byte(`{"description":"d","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":"a"},"bedrock":{"a":"x","b":null}}`), smallHash},
		{"small: alias removed", []byte(`{"description":"d","anthropic":{"a":"a","b":null},"bedrock":{"a":"x"}}`), smallHash},
		{"small: alias retargeted", []byte(`{"description":"d","provider_aliases":{"claude":"bedrock"},"anthropic":{"a":"a","b":null},"bedrock":{"a":"x"}}`), smallHash},
		{"small: description removed", []byte(`{"provider_aliases":{"claude":"anthropic"},"anthropic":{"a":"a","b":null},"bedrock":{"a":"x"}}`), smallHash},
		{"small: provider added", []byte(`{"description":"d","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":"a","b":null},"bedrock":{"a":"x"},"databricks":{}}`), smallHash},
		{"small: beta case changed", []byte(`{"description":"d","provider_aliases":{"claude":"anthropic"},"anthropic":{"A":"a","b":null},"bedrock":{"a":"x"}}`), smallHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := betasync.Parse(tt.doc)
			require.NoError(t, err)
			assert.NotEqual(t, tt.base, m.Hash())
		})
	}
}

func TestDefault(t *testing.T) {
	d := betasync.Default()
	require.NotNil(t, d)
	assert.Same(t, d, betasync.Default(), "Default is built once")

	assert.Equal(t, upstreamProviders, d.Providers(), "the default has every provider of the upstream fixture")
	for _, p := range upstreamProviders {
		s, ok := d.Section(p)
		assert.True(t, ok, p)
		assert.NotEmpty(t, s, p)
	}
	assert.NotEmpty(t, d.Description())
	assert.Nil(t, d.Warnings(), "the embedded default is clean")

	again, err := betasync.Parse(d.JSON())
	require.NoError(t, err)
	assert.Equal(t, d.Hash(), again.Hash())

	name, ok := d.Lookup("bedrock", "advanced-tool-use-2025-11-20")
	assert.True(t, ok)
	assert.Equal(t, "tool-search-tool-2025-10-19", name)
}

func TestParseErrors(t *testing.T) {
	big := append([]byte(`{"anthropic":{}}`), bytes.Repeat([]byte(" "), betasync.MaxConfigSize)...)
	tests := []struct {
		name  string
		doc   string
		wants []string
	}{
		// Not a JSON object.
		{"empty input", ``, []string{"document", "not valid JSON"}},
		{"white space only", " \n", []string{"document", "not valid JSON"}},
		{"not JSON", `hello`, []string{"document", "not valid JSON"}},
		{"top-level array", `[]`, []string{"document must be a JSON object", "an array"}},
		{"top-level string", `"anthropic"`, []string{"document must be a JSON object", "a string"}},
		{"top-level null", `null`, []string{"document must be a JSON object", "null"}},
		{"top-level number", `1`, []string{"document must be a JSON object", "a number"}},
		{"top-level bool", `true`, []string{"document must be a JSON object", "a boolean"}},
		{"unterminated object", `{"anthropic":{}`, []string{"document"}},
		{"unterminated section", `{"anthropic":{"a":"a"`, []string{`provider "anthropic"`}},
		{"trailing comma in section", `{"anthropic":{"a":"a",}}`, []string{`provider "anthropic"`, "not valid JSON"}},
		{"missing comma", `{"anthropic":{} "bedrock":{}}`, []string{"document"}},
		{"trailing object", `{"anthropic":{}} {}`, []string{"unexpected data after the document"}},
		{"trailing garbage", `{"anthropic":{}} x`, []string{"unexpected data after the document"}},
		{"trailing array", `{"anthropic":{}}[]`, []string{"unexpected data after the document"}},
		{"over 1 MiB", string(big), []string{"1048576-byte limit"}},

		// Repeated keys: the last value wins and is validated, like the others.
		{"duplicate provider, last not an object", `{"anthropic":{},"anthropic":1}`, []string{`provider "anthropic" must be a JSON object`, "a number"}},
		{"duplicate description, last not a string", `{"description":"a","description":null,"anthropic":{}}`, []string{"description must be a string", "null"}},
		{"duplicate beta, last a number", `{"anthropic":{"a":"a","a":1}}`, []string{`provider "anthropic": beta "a"`, "string or null", "a number"}},
		{"duplicate beta, last mapped name bad", `{"anthropic":{"a":"a","a":"x,y"}}`, []string{`beta "a": mapped name "x,y" contains a comma`}},
		{"duplicate alias, last not a string", `{"provider_aliases":{"claude":"anthropic","claude":1},"anthropic":{}}`, []string{"provider_aliases.claude must be a string", "a number"}},
		{"duplicate, bad JSON in the shadowed value", `{"anthropic":{"a":},"anthropic":{}}`, []string{`provider "anthropic"`, "not valid JSON"}},

		// description.
		{"description number", `{"description":1,"anthropic":{}}`, []string{"description must be a string", "a number"}},
		{"description null", `{"description":null,"anthropic":{}}`, []string{"description must be a string", "null"}},
		{"description object", `{"description":{},"anthropic":{}}`, []string{"description must be a string", "an object"}},

		// provider_aliases.
		{"aliases array", `{"provider_aliases":[],"anthropic":{}}`, []string{"provider_aliases must be a JSON object", "an array"}},
		{"aliases string", `{"provider_aliases":"anthropic","anthropic":{}}`, []string{"provider_aliases must be a JSON object", "a string"}},
		{"aliases null", `{"provider_aliases":null,"anthropic":{}}`, []string{"provider_aliases must be a JSON object", "null"}},
		{"alias value number", `{"provider_aliases":{"claude":1},"anthropic":{}}`, []string{"provider_aliases.claude must be a string", "a number"}},
		{"alias value null", `{"provider_aliases":{"claude":null},"anthropic":{}}`, []string{"provider_aliases.claude must be a string", "null"}},
		{"alias value object", `{"provider_aliases":{"claude":{}},"anthropic":{}}`, []string{"provider_aliases.claude must be a string", "an object"}},
		{"aliases unterminated", `{"provider_aliases":{"claude":"anthropic"`, []string{"provider_aliases", "not valid JSON"}},

		// Provider sections.
		{"provider array", `{"anthropic":[]}`, []string{`provider "anthropic" must be a JSON object`, "an array"}},
		{"provider string", `{"anthropic":"x"}`, []string{`provider "anthropic" must be a JSON object`, "a string"}},
		{"provider null", `{"anthropic":null}`, []string{`provider "anthropic" must be a JSON object`, "null"}},
		{"provider number", `{"bedrock":{},"databricks":7}`, []string{`provider "databricks" must be a JSON object`, "a number"}},
		{"provider with odd name not an object", `{"anthropic":{}," x":[]}`, []string{`provider " x" must be a JSON object`, "an array"}},

		// Beta values.
		{"beta number", `{"anthropic":{"a":1}}`, []string{`provider "anthropic": beta "a"`, "string or null", "a number"}},
		{"beta bool", `{"anthropic":{"a":true}}`, []string{`provider "anthropic": beta "a"`, "string or null", "a boolean"}},
		{"beta false", `{"anthropic":{"a":false}}`, []string{`provider "anthropic": beta "a"`, "a boolean"}},
		{"beta object", `{"anthropic":{"a":{}}}`, []string{`provider "anthropic": beta "a"`, "string or null", "an object"}},
		{"beta array", `{"anthropic":{"a":["a"]}}`, []string{`provider "anthropic": beta "a"`, "string or null", "an array"}},
		{"beta with odd name, value a number", `{"anthropic":{" a":1}}`, []string{`provider "anthropic": beta " a"`, "string or null", "a number"}},

		// Mapped names: sent to the provider, so they stay strict.
		{"mapped empty", `{"anthropic":{"a":""}}`, []string{`provider "anthropic": beta "a": mapped name is empty`}},
		{"mapped with comma", `{"anthropic":{"a":"x,y"}}`, []string{`beta "a": mapped name "x,y" contains a comma`}},
		{"mapped padded", `{"anthropic":{"a":"x "}}`, []string{`beta "a": mapped name "x "`, "white space"}},
		{"mapped leading tab", `{"anthropic":{"a":"\tx"}}`, []string{`beta "a": mapped name "\tx"`, "white space"}},
		{"mapped no-break space", `{"anthropic":{"a":"x\u00a0"}}`, []string{`beta "a": mapped name`, "white space"}},
		{"mapped Python-only white space", `{"anthropic":{"a":"\u001fx"}}`, []string{`beta "a": mapped name "\x1fx"`, "white space"}},
		{"mapped control char", `{"anthropic":{"a":"x\u0000"}}`, []string{`beta "a": mapped name "x\x00"`, "control character"}},
		{"mapped inner newline", `{"anthropic":{"a":"x\ny"}}`, []string{`beta "a": mapped name "x\ny"`, "control character"}},
		{"mapped DEL", `{"anthropic":{"a":"x\u007fy"}}`, []string{`beta "a": mapped name "x\x7fy"`, "control character"}},
		{"mapped C1 control", `{"anthropic":{"a":"x\u0085y"}}`, []string{`beta "a": mapped name "x\u0085y"`, "control character"}},
		{"mapped under an odd beta", `{"anthropic":{" a":"x,y"}}`, []string{`beta " a": mapped name "x,y" contains a comma`}},

		// Integrity.
		{"empty object", `{}`, []string{"no core provider"}},
		{"description only", `{"description":"x"}`, []string{"no core provider"}},
		{"no core provider", `{"databricks":{"a":"a"},"bedrock_mantle":{}}`, []string{"no core provider", "anthropic, azure_ai, bedrock, bedrock_converse, vertex_ai"}},
		{"core provider only as alias", `{"provider_aliases":{"bedrock":"databricks"},"databricks":{}}`, []string{"no core provider"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := betasync.Parse([]byte(tt.doc))
			assert.Nil(t, m)
			requireInvalid(t, err, tt.wants...)
		})
	}
}

// TestParseWarnings covers what LiteLLM accepts and so do we: Parse succeeds
// and Warnings names the key and why, sorted.
func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		// Repeated keys: the last one wins, at every level.
		{"duplicate provider", `{"anthropic":{"a":"x"},"anthropic":{"a":"y"}}`, []string{`key "anthropic" appears twice; the last one wins`}},
		{"duplicate provider, escaped", `{"anthropic":{},"\u0061nthropic":{}}`, []string{`key "anthropic" appears twice; the last one wins`}},
		{"duplicate provider, three times", `{"anthropic":{},"anthropic":{},"anthropic":{}}`, []string{`key "anthropic" appears 3 times; the last one wins`}},
		{"duplicate description", `{"description":"a","description":"b","anthropic":{}}`, []string{`key "description" appears twice; the last one wins`}},
		{"duplicate provider_aliases", `{"provider_aliases":{},"provider_aliases":{},"anthropic":{}}`, []string{`key "provider_aliases" appears twice; the last one wins`}},
		{"duplicate beta", `{"anthropic":{"a":"a","a":null}}`, []string{`provider "anthropic": beta "a" appears twice; the last one wins`}},
		{"duplicate alias", `{"provider_aliases":{"claude":"anthropic","claude":"anthropic"},"anthropic":{}}`, []string{`provider_aliases: alias "claude" appears twice; the last one wins`}},
		{"shadowed value is not validated", `{"anthropic":1,"anthropic":{"a":"x,y","a":"a"}}`, []string{
			`key "anthropic" appears twice; the last one wins`,
			`provider "anthropic": beta "a" appears twice; the last one wins`,
		}},

		// Aliases.
		{"alias to missing section", `{"provider_aliases":{"claude":"nope"},"anthropic":{}}`, []string{
			`provider_aliases: alias "claude" points to "nope", which has no section; requests for "claude" get no betas`,
		}},
		{"alias to an alias", `{"provider_aliases":{"a":"anthropic","b":"a"},"anthropic":{}}`, []string{
			`provider_aliases: alias "b" points to "a", which is an alias without a section (aliases are resolved once); requests for "b" get no betas`,
		}},
		{"alias to itself without a section", `{"provider_aliases":{"b":"b"},"anthropic":{}}`, []string{
			`provider_aliases: alias "b" points to "b", which has no section; requests for "b" get no betas`,
		}},
		{"alias to description", `{"description":"x","provider_aliases":{"d":"description"},"anthropic":{}}`, []string{
			`provider_aliases: alias "d" points to "description", which has no section; requests for "d" get no betas`,
		}},
		{"alias equal to a section", `{"provider_aliases":{"bedrock":"anthropic"},"anthropic":{},"bedrock":{}}`, []string{
			`provider_aliases: alias "bedrock" has the name of a provider section; aliases are resolved first, so section "bedrock" is unreachable`,
		}},
		{"alias equal to a section, to a missing one", `{"provider_aliases":{"bedrock":"nope"},"anthropic":{},"bedrock":{}}`, []string{
			`provider_aliases: alias "bedrock" has the name of a provider section; aliases are resolved first, so section "bedrock" is unreachable`,
			`provider_aliases: alias "bedrock" points to "nope", which has no section; requests for "bedrock" get no betas`,
		}},
		{"alias name empty", `{"provider_aliases":{"":"anthropic"},"anthropic":{}}`, []string{
			`provider_aliases: alias "" is empty; only a caller passing exactly this name reaches it`,
		}},
		{"alias name padded", `{"provider_aliases":{" claude":"anthropic"},"anthropic":{}}`, []string{
			`provider_aliases: alias " claude" has leading or trailing white space; only a caller passing exactly this name reaches it`,
		}},
		{"alias name with comma", `{"provider_aliases":{"a,b":"anthropic"},"anthropic":{}}`, []string{
			`provider_aliases: alias "a,b" contains a comma; only a caller passing exactly this name reaches it`,
		}},

		// Provider names.
		{"provider name empty", `{"":{},"anthropic":{}}`, []string{`provider name "" is empty; only a caller passing exactly this name reaches it`}},
		{"provider name padded", `{"anthropic ":{},"bedrock":{}}`, []string{`provider name "anthropic " has leading or trailing white space; only a caller passing exactly this name reaches it`}},
		{"provider name with comma", `{"a,b":{},"anthropic":{}}`, []string{`provider name "a,b" contains a comma; only a caller passing exactly this name reaches it`}},

		// Beta keys no request can match.
		{"beta empty", `{"anthropic":{"":"a"}}`, []string{`provider "anthropic": beta "" is empty; no header item can match it`}},
		{"beta with comma", `{"bedrock":{"a,b":"a"}}`, []string{`provider "bedrock": beta "a,b" contains a comma; header values are split on commas, so no header item can match it`}},
		{"beta leading space", `{"anthropic":{" a":"a"}}`, []string{`provider "anthropic": beta " a" has leading or trailing white space; items are stripped before the lookup, so it can never match`}},
		{"beta trailing tab", `{"anthropic":{"a\t":"a"}}`, []string{`provider "anthropic": beta "a\t" has leading or trailing white space; items are stripped before the lookup, so it can never match`}},
		{"beta leading no-break space", `{"anthropic":{"\u00a0a":"a"}}`, []string{`provider "anthropic": beta "\u00a0a" has leading or trailing white space; items are stripped before the lookup, so it can never match`}},
		{"beta Python-only white space", `{"anthropic":{"a\u001c":"a"}}`, []string{`provider "anthropic": beta "a\x1c" has leading or trailing white space; items are stripped before the lookup, so it can never match`}},
		{"beta control char", `{"anthropic":{"a\u0001b":"a"}}`, []string{`provider "anthropic": beta "a\x01b" contains a control character; it is unlikely to match any request`}},
		{"beta inner tab", `{"anthropic":{"a\tb":"a"}}`, []string{`provider "anthropic": beta "a\tb" contains a control character; it is unlikely to match any request`}},
		{"beta inner newline", `{"anthropic":{"a\nb":"a"}}`, []string{`provider "anthropic": beta "a\nb" contains a control character; it is unlikely to match any request`}},
		{"beta DEL", `{"anthropic":{"a\u007fb":"a"}}`, []string{`provider "anthropic": beta "a\x7fb" contains a control character; it is unlikely to match any request`}},
		{"null beta with odd name", `{"anthropic":{" a":null}}`, []string{`provider "anthropic": beta " a" has leading or trailing white space; items are stripped before the lookup, so it can never match`}},

		{"several, sorted", `{"provider_aliases":{"z":"nope"},"vertex_ai":{" b":null,"":"x"},"anthropic":{"a,b":"a"},"anthropic":{"a,b":"a"}}`, []string{
			`key "anthropic" appears twice; the last one wins`,
			`provider "anthropic": beta "a,b" contains a comma; header values are split on commas, so no header item can match it`,
			`provider "vertex_ai": beta " b" has leading or trailing white space; items are stripped before the lookup, so it can never match`,
			`provider "vertex_ai": beta "" is empty; no header item can match it`,
			`provider_aliases: alias "z" points to "nope", which has no section; requests for "z" get no betas`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.True(t, slices.IsSorted(tt.want), "the expected warnings must be listed sorted")
			m, err := betasync.Parse([]byte(tt.doc))
			require.NoError(t, err)
			assert.Equal(t, tt.want, m.Warnings())
			again, err := betasync.Parse([]byte(tt.doc))
			require.NoError(t, err)
			assert.Equal(t, m.Warnings(), again.Warnings(), "deterministic")

			if len(tt.want) == 1 {
				assert.Contains(t, m.Summary(), ", 1 warning, hash ")
			} else {
				assert.Contains(t, m.Summary(), fmt.Sprintf(", %d warnings, hash ", len(tt.want)))
			}

			w := m.Warnings()
			w[0] = "mutated"
			assert.Equal(t, tt.want, m.Warnings(), "Warnings returns a copy")

			// The canonical form keeps every warning but the repeated keys,
			// and the hash.
			canon, err := betasync.Parse(m.JSON())
			require.NoError(t, err)
			assert.Equal(t, m.Hash(), canon.Hash())
			var rest []string
			for _, w := range tt.want {
				if !strings.Contains(w, "; the last one wins") {
					rest = append(rest, w)
				}
			}
			assert.Equal(t, rest, canon.Warnings())
		})
	}

	t.Run("none", func(t *testing.T) {
		m := mustParseDoc(t, `{"provider_aliases":{"claude":"anthropic","anthropic":"anthropic"},"anthropic":{"a b":"c d","bêta":null}}`)
		assert.Nil(t, m.Warnings(), "an alias to itself is harmless")
		assert.NotContains(t, m.Summary(), "warning")
	})
}

// TestAliasShadowsSection checks LiteLLM's order: the alias is resolved
// before the section is looked up, so a section with the alias's name is
// never used.
func TestAliasShadowsSection(t *testing.T) {
	m := mustParseDoc(t, `{
		"provider_aliases": {"bedrock": "anthropic", "claude": "bedrock", "azure_ai": "nope"},
		"anthropic": {"a": "a-anthropic", "n": null},
		"bedrock": {"a": "a-bedrock", "b": "b-bedrock"},
		"azure_ai": {"a": "a-azure"}
	}`)
	assert.Equal(t, []string{
		`provider_aliases: alias "azure_ai" has the name of a provider section; aliases are resolved first, so section "azure_ai" is unreachable`,
		`provider_aliases: alias "azure_ai" points to "nope", which has no section; requests for "azure_ai" get no betas`,
		`provider_aliases: alias "bedrock" has the name of a provider section; aliases are resolved first, so section "bedrock" is unreachable`,
		`provider_aliases: alias "claude" points to "bedrock", which is also an alias; aliases are resolved once, so "claude" uses section "bedrock"`,
	}, m.Warnings())
	assert.Equal(t, []string{"anthropic", "azure_ai", "bedrock"}, m.Providers(), "shadowed sections are still listed")

	tests := []struct {
		provider string
		want     []string
		resolved string
		section  []string // the betas of the section used; nil means none
	}{
		{"bedrock", []string{"a-anthropic"}, "anthropic", []string{"a", "n"}},
		{"anthropic", []string{"a-anthropic"}, "anthropic", []string{"a", "n"}},
		// Resolved once: "claude" -> "bedrock" is the bedrock section.
		{"claude", []string{"a-bedrock", "b-bedrock"}, "bedrock", []string{"a", "b"}},
		// Shadowed by an alias to nowhere: nothing passes.
		{"azure_ai", nil, "nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			assert.Equal(t, tt.want, m.Betas(tt.provider, "a,b,n"))
			assert.Equal(t, tt.resolved, m.Resolve(tt.provider))
			s, ok := m.Section(tt.provider)
			if tt.section == nil {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.section, slices.Sorted(maps.Keys(s)))
			for beta, name := range s {
				got, ok := m.Lookup(tt.provider, beta)
				assert.Equal(t, name != nil, ok, beta)
				if name != nil {
					assert.Equal(t, *name, got)
				}
			}
		})
	}

	t.Run("placement follows the provider called, not the alias target", func(t *testing.T) {
		assert.Equal(t, betasync.InBody, m.PlacementFor("bedrock"))
		h := http.Header{"Anthropic-Beta": {"a,b"}}
		out, err := m.FilterRequest("bedrock", h, []byte(`{"max_tokens":1}`))
		require.NoError(t, err)
		assert.JSONEq(t, `{"max_tokens":1,"anthropic_beta":["a-anthropic"]}`, string(out))
		assert.Empty(t, h)
	})
}

// TestAliasToMissingSection checks that an alias to a provider without a
// section filters to nothing, as in LiteLLM (fail-closed), instead of
// rejecting the document.
func TestAliasToMissingSection(t *testing.T) {
	m := mustParseDoc(t, `{"provider_aliases":{"claude":"nope","aws":"bedrock"},"anthropic":{"a":"a"},"bedrock":{"a":"a"}}`)
	assert.Equal(t, []string{`provider_aliases: alias "claude" points to "nope", which has no section; requests for "claude" get no betas`}, m.Warnings())

	assert.Equal(t, "nope", m.Resolve("claude"))
	_, ok := m.Section("claude")
	assert.False(t, ok)
	_, ok = m.Lookup("claude", "a")
	assert.False(t, ok)
	assert.Nil(t, m.Betas("claude", "a"))

	h := http.Header{"Anthropic-Beta": {"a"}}
	assert.Empty(t, m.FilterHeader(h, "claude"))
	assert.Empty(t, h, "the header is removed")

	h = http.Header{"Anthropic-Beta": {"a"}}
	out, err := m.FilterRequest("claude", h, []byte(`{"anthropic_beta":["a"],"max_tokens":1}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"max_tokens":1}`, string(out))
	assert.Empty(t, h)

	assert.Equal(t, []string{"a"}, m.Betas("aws", "a"), "the other alias works")
}

// TestParseDuplicateKeysLastWins checks Python's json.loads behaviour: at
// every level the last of repeated keys wins, and the result is the same
// mapping, with the same hash, as the document without the repeats.
func TestParseDuplicateKeysLastWins(t *testing.T) {
	const dup = `{
		"description": "first",
		"anthropic": {"a": "dropped", "b": 1},
		"provider_aliases": {"claude": "bedrock", "old": "anthropic"},
		"bedrock": {"a": "a", "a": null, "a": "a-bedrock", "c": null, "c": "c"},
		"description": "second",
		"provider_aliases": {"claude": "bedrock", "claude": "anthropic"},
		"anthropic": {"a": "a", "n": null}
	}`
	const dedup = `{
		"description": "second",
		"provider_aliases": {"claude": "anthropic"},
		"anthropic": {"a": "a", "n": null},
		"bedrock": {"a": "a-bedrock", "c": "c"}
	}`
	m := mustParseDoc(t, dup)
	want := mustParseDoc(t, dedup)
	require.Empty(t, want.Warnings())

	assert.Equal(t, want.Hash(), m.Hash())
	assert.Equal(t, string(want.JSON()), string(m.JSON()))
	assert.Equal(t, []string{
		`key "anthropic" appears twice; the last one wins`,
		`key "description" appears twice; the last one wins`,
		`key "provider_aliases" appears twice; the last one wins`,
		`provider "bedrock": beta "a" appears 3 times; the last one wins`,
		`provider "bedrock": beta "c" appears twice; the last one wins`,
		`provider_aliases: alias "claude" appears twice; the last one wins`,
	}, m.Warnings())
	assert.Contains(t, m.Summary(), "6 warnings")
	assert.NotContains(t, want.Summary(), "warning")

	assert.Equal(t, "second", m.Description())
	assert.Equal(t, map[string]string{"claude": "anthropic"}, m.Aliases(), "a repeated provider_aliases is replaced, not merged")
	assert.Equal(t, []string{"a"}, m.Betas("claude", "a,b,n"))
	assert.Equal(t, []string{"a-bedrock", "c"}, m.Betas("bedrock", "a,c"))
	assert.Nil(t, m.Betas("old", "a"), "the alias of the first provider_aliases is gone")
}

func TestParseAccepts(t *testing.T) {
	exact := []byte(`{"anthropic":{}}`)
	exact = append(exact, bytes.Repeat([]byte(" "), betasync.MaxConfigSize-len(exact))...)
	tests := []struct {
		name      string
		doc       string
		providers []string
		aliases   map[string]string
	}{
		{"one empty core section", `{"anthropic":{}}`, []string{"anthropic"}, map[string]string{}},
		{"each core provider alone", `{"azure_ai":{"a":null}}`, []string{"azure_ai"}, map[string]string{}},
		{"bedrock_converse alone", `{"bedrock_converse":{"a":"b"}}`, []string{"bedrock_converse"}, map[string]string{}},
		{"vertex_ai alone", `{"vertex_ai":{}}`, []string{"vertex_ai"}, map[string]string{}},
		{"non-core providers beside a core one", `{"databricks":{"a":"a"},"bedrock":{}}`, []string{"bedrock", "databricks"}, map[string]string{}},
		{"aliases", `{"provider_aliases":{"claude":"anthropic","aws":"bedrock"},"anthropic":{},"bedrock":{}}`, []string{"anthropic", "bedrock"}, map[string]string{"claude": "anthropic", "aws": "bedrock"}},
		{"empty aliases", `{"provider_aliases":{},"anthropic":{}}`, []string{"anthropic"}, map[string]string{}},
		{"exactly MaxConfigSize bytes", string(exact), []string{"anthropic"}, map[string]string{}},
		{"non-ASCII names", `{"anthropic":{"bêta":"βeta"}}`, []string{"anthropic"}, map[string]string{}},
		{"inner space in a name", `{"anthropic":{"a b":"c d"}}`, []string{"anthropic"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := betasync.Parse([]byte(tt.doc))
			require.NoError(t, err)
			assert.Equal(t, tt.providers, m.Providers())
			assert.Equal(t, tt.aliases, m.Aliases())
			again, err := betasync.Parse(m.JSON())
			require.NoError(t, err)
			assert.Equal(t, m.Hash(), again.Hash())
		})
	}
}

func TestAliases(t *testing.T) {
	m := mustParseDoc(t, `{"provider_aliases":{"claude":"anthropic","aws":"bedrock"},"anthropic":{"a":"a","n":null},"bedrock":{"a":"x"}}`)

	tests := []struct {
		provider, resolved string
		hasSection         bool
	}{
		{"claude", "anthropic", true},
		{"aws", "bedrock", true},
		{"anthropic", "anthropic", true},
		{"openai", "openai", false},
		{"Claude", "Claude", false},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			assert.Equal(t, tt.resolved, m.Resolve(tt.provider))
			s, ok := m.Section(tt.provider)
			assert.Equal(t, tt.hasSection, ok)
			if tt.hasSection {
				direct, _ := m.Section(tt.resolved)
				assert.Equal(t, direct, s)
				for beta := range s {
					n1, ok1 := m.Lookup(tt.provider, beta)
					n2, ok2 := m.Lookup(tt.resolved, beta)
					assert.Equal(t, ok2, ok1, beta)
					assert.Equal(t, n2, n1, beta)
				}
			}
		})
	}

	t.Run("Aliases returns a copy", func(t *testing.T) {
		a := m.Aliases()
		a["claude"] = "bedrock"
		a["new"] = "anthropic"
		assert.Equal(t, map[string]string{"claude": "anthropic", "aws": "bedrock"}, m.Aliases())
	})
}

// FuzzParse checks that Parse never panics, rejects only with EINVALID, and
// that whatever it accepts has a stable canonical form and sane lookups.
func FuzzParse(f *testing.F) {
	f.Add(fixture(f))
	f.Add(betasync.Default().JSON())
	for _, s := range []string{
		``,
		`{}`,
		`[]`,
		`null`,
		`{"anthropic":{}}`,
		`{"anthropic":{"a":"b","c":null}}`,
		`{"description":"x","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":null},"bedrock":{"a":"b"}}`,
		`{"provider_aliases":{"claude":"nope"},"anthropic":{}}`,
		`{"provider_aliases":{"anthropic":"bedrock"},"anthropic":{},"bedrock":{}}`,
		`{"anthropic":{"a":1}}`,
		`{"anthropic":{"a":"b"}} x`,
		`{"anthropic":{"a\u0000":"b"}}`,
		`{"anthropic":{"a":"a","a":"b"}}`,
		`{"anthropic":1,"anthropic":{" a":"b","a,b":null,"":"c","\u001cd":"d"}}`,
		`{"provider_aliases":{"bedrock":"anthropic","claude":"bedrock","x":"y","x":"anthropic"},"anthropic":{"a":"b"},"bedrock":{"a":"c"}}`,
		`{"anthropic":{"a":"a",}}`,
		`{"anthropic":{}`,
		`{"description":"\ud800<&>","bedrock":{"\u2028":"\u00e9"}}`,
		`{"bedrock":{"a\"b":"c\\d"}}`,
		"{\"bedrock\":{\"\xff\":\"\xfe\"}}",
		`{"vertex_ai":{"a":"b"},"description":"` + strings.Repeat("é", 40) + `"}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := betasync.Parse(data)
		if err != nil {
			require.Nil(t, m)
			require.Equal(t, betasync.EINVALID, betasync.ErrorCode(err), "error: %v", err)
			require.NotEmpty(t, betasync.ErrorMessage(err))
			return
		}
		require.True(t, json.Valid(m.JSON()), "canonical JSON: %q", m.JSON())

		again, err := betasync.Parse(m.JSON())
		require.NoError(t, err, "canonical JSON: %q", m.JSON())
		require.Equal(t, m.Hash(), again.Hash())
		require.Equal(t, m.JSON(), again.JSON(), "canonical form must be a fixed point")
		require.Equal(t, m.Providers(), again.Providers())
		require.Equal(t, m.Aliases(), again.Aliases())
		require.Equal(t, m.BetaCount(), again.BetaCount())
		require.True(t, slices.ContainsFunc(betasync.CoreProviders, func(p string) bool { return slices.Contains(m.Providers(), p) }))

		// Warnings are sorted; the canonical form loses only those about
		// repeated keys.
		warnings := m.Warnings()
		require.True(t, slices.IsSorted(warnings))
		for _, w := range again.Warnings() {
			require.Contains(t, warnings, w)
		}
		for _, w := range warnings {
			if !slices.Contains(again.Warnings(), w) {
				require.Contains(t, w, "; the last one wins")
			}
		}

		var allBetas []string
		for _, p := range m.Providers() {
			if s, ok := m.Section(p); ok {
				allBetas = slices.AppendSeq(allBetas, maps.Keys(s))
			}
		}
		providers := m.Providers()
		for alias := range m.Aliases() {
			providers = append(providers, alias)
		}
		for _, p := range providers {
			section, ok := m.Section(p)
			if !ok {
				// Only an alias to a provider without a section has none,
				// and then nothing passes.
				require.Contains(t, m.Aliases(), p)
				require.NotContains(t, m.Providers(), m.Resolve(p))
				for _, beta := range allBetas {
					_, found := m.Lookup(p, beta)
					require.False(t, found, "%q/%q", p, beta)
				}
				continue
			}
			for beta, mapped := range section {
				name, ok := m.Lookup(p, beta)
				if mapped == nil {
					require.False(t, ok, "%q/%q is null", p, beta)
					continue
				}
				require.True(t, ok, "%q/%q", p, beta)
				require.Equal(t, *mapped, name)
				// Mapped names are strict: they travel in a header.
				require.NotEmpty(t, name, "%q/%q", p, beta)
				require.NotContains(t, name, ",")
				require.Equal(t, pyStrip(name), name)
				require.False(t, strings.ContainsFunc(name, unicode.IsControl), "%q", name)
				// A beta a header item can name survives filtering on its own.
				if beta != "" && pyStrip(beta) == beta && !strings.Contains(beta, ",") {
					require.Equal(t, []string{name}, m.Betas(p, beta))
				}
			}
		}
	})
}
