package betasync_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

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

		// Duplicates.
		{"duplicate provider", `{"anthropic":{},"anthropic":{}}`, []string{`key "anthropic" appears twice`}},
		{"duplicate provider, escaped", `{"anthropic":{},"\u0061nthropic":{}}`, []string{`key "anthropic" appears twice`}},
		{"duplicate description", `{"description":"a","description":"b","anthropic":{}}`, []string{`key "description" appears twice`}},
		{"duplicate provider_aliases", `{"provider_aliases":{},"provider_aliases":{},"anthropic":{}}`, []string{`key "provider_aliases" appears twice`}},
		{"duplicate beta", `{"anthropic":{"a":"a","a":null}}`, []string{`provider "anthropic"`, `beta "a" appears twice`}},
		{"duplicate alias", `{"provider_aliases":{"claude":"anthropic","claude":"anthropic"},"anthropic":{}}`, []string{"provider_aliases", `alias "claude" appears twice`}},

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
		{"alias to missing section", `{"provider_aliases":{"claude":"nope"},"anthropic":{}}`, []string{"provider_aliases", `alias "claude" points to "nope"`, "no section"}},
		{"alias to an alias", `{"provider_aliases":{"a":"anthropic","b":"a"},"anthropic":{}}`, []string{`alias "b" points to "a"`}},
		{"alias to description", `{"description":"x","provider_aliases":{"d":"description"},"anthropic":{}}`, []string{`alias "d" points to "description"`}},
		{"alias equal to a section", `{"provider_aliases":{"bedrock":"anthropic"},"anthropic":{},"bedrock":{}}`, []string{`alias "bedrock" is also a provider section`}},
		{"alias equal to its own target", `{"provider_aliases":{"anthropic":"anthropic"},"anthropic":{}}`, []string{`alias "anthropic" is also a provider section`}},
		{"alias name empty", `{"provider_aliases":{"":"anthropic"},"anthropic":{}}`, []string{"provider_aliases: alias is empty"}},
		{"alias name padded", `{"provider_aliases":{" claude":"anthropic"},"anthropic":{}}`, []string{`alias " claude"`, "white space"}},
		{"alias name with comma", `{"provider_aliases":{"a,b":"anthropic"},"anthropic":{}}`, []string{`alias "a,b"`, "comma"}},

		// Provider sections.
		{"provider array", `{"anthropic":[]}`, []string{`provider "anthropic" must be a JSON object`, "an array"}},
		{"provider string", `{"anthropic":"x"}`, []string{`provider "anthropic" must be a JSON object`, "a string"}},
		{"provider null", `{"anthropic":null}`, []string{`provider "anthropic" must be a JSON object`, "null"}},
		{"provider number", `{"bedrock":{},"databricks":7}`, []string{`provider "databricks" must be a JSON object`, "a number"}},
		{"provider name empty", `{"":{},"anthropic":{}}`, []string{"provider name is empty"}},
		{"provider name padded", `{"anthropic ":{}}`, []string{`provider name "anthropic "`, "white space"}},
		{"provider name with comma", `{"a,b":{},"anthropic":{}}`, []string{`provider name "a,b"`, "comma"}},

		// Beta values.
		{"beta number", `{"anthropic":{"a":1}}`, []string{`provider "anthropic": beta "a"`, "string or null", "a number"}},
		{"beta bool", `{"anthropic":{"a":true}}`, []string{`provider "anthropic": beta "a"`, "string or null", "a boolean"}},
		{"beta false", `{"anthropic":{"a":false}}`, []string{`provider "anthropic": beta "a"`, "a boolean"}},
		{"beta object", `{"anthropic":{"a":{}}}`, []string{`provider "anthropic": beta "a"`, "string or null", "an object"}},
		{"beta array", `{"anthropic":{"a":["a"]}}`, []string{`provider "anthropic": beta "a"`, "string or null", "an array"}},

		// Beta names.
		{"beta empty", `{"anthropic":{"":"a"}}`, []string{`provider "anthropic": beta is empty`}},
		{"beta with comma", `{"bedrock":{"a,b":"a"}}`, []string{`provider "bedrock": beta "a,b" contains a comma`}},
		{"beta leading space", `{"anthropic":{" a":"a"}}`, []string{`provider "anthropic": beta " a"`, "leading or trailing white space"}},
		{"beta trailing tab", `{"anthropic":{"a\t":"a"}}`, []string{`provider "anthropic": beta "a\t"`, "white space"}},
		{"beta leading no-break space", `{"anthropic":{"\u00a0a":"a"}}`, []string{`provider "anthropic": beta`, "white space"}},
		{"beta control char", `{"anthropic":{"a\u0001b":"a"}}`, []string{`provider "anthropic": beta "a\x01b"`, "control character"}},
		{"beta inner tab", `{"anthropic":{"a\tb":"a"}}`, []string{`beta "a\tb"`, "control character"}},
		{"beta inner newline", `{"anthropic":{"a\nb":"a"}}`, []string{`beta "a\nb"`, "control character"}},
		{"beta DEL", `{"anthropic":{"a\u007fb":"a"}}`, []string{`beta "a\x7fb"`, "control character"}},

		// Mapped names.
		{"mapped empty", `{"anthropic":{"a":""}}`, []string{`provider "anthropic": beta "a": mapped name is empty`}},
		{"mapped with comma", `{"anthropic":{"a":"x,y"}}`, []string{`beta "a": mapped name "x,y" contains a comma`}},
		{"mapped padded", `{"anthropic":{"a":"x "}}`, []string{`beta "a": mapped name "x "`, "white space"}},
		{"mapped control char", `{"anthropic":{"a":"x\u0000"}}`, []string{`beta "a": mapped name "x\x00"`, "control character"}},

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

		providers := m.Providers()
		for alias := range m.Aliases() {
			providers = append(providers, alias)
		}
		for _, p := range providers {
			section, ok := m.Section(p)
			require.True(t, ok, "provider %q", p)
			for beta, mapped := range section {
				require.NotEmpty(t, beta)
				name, ok := m.Lookup(p, beta)
				if mapped == nil {
					require.False(t, ok, "%q/%q is null", p, beta)
					continue
				}
				require.True(t, ok, "%q/%q", p, beta)
				require.NotEmpty(t, name, "%q/%q", p, beta)
				require.Equal(t, *mapped, name)
				require.NotContains(t, name, ",")
				require.Equal(t, strings.TrimSpace(name), name)
				// A beta always survives filtering on its own.
				require.Equal(t, []string{name}, m.Betas(p, beta))
			}
		}
	})
}
