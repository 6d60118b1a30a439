package betasync_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

// claudeCodeHeader is a typical anthropic-beta value sent by Claude Code.
const claudeCodeHeader = "claude-code-20250219,interleaved-thinking-2025-05-14,context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14,advanced-tool-use-2025-11-20"

// smallDoc exercises aliases, renames, nulls and case in a few lines.
const smallDoc = `{
	"provider_aliases": {"claude": "anthropic", "aws": "bedrock", "empty_alias": "empty"},
	"anthropic": {"a-1": "a-1", "b-1": "b-1", "c-1": null, "Z-1": "Z-1", "x y": "x y"},
	"bedrock": {"a-1": "a-1", "b-1": "renamed-b", "old-1": "renamed-b", "c-1": "c-1", "n-1": null},
	"empty": {}
}`

func TestFilterSemantics(t *testing.T) {
	small := mustParseDoc(t, smallDoc)
	up := parseFixture(t)

	tests := []struct {
		name     string
		m        *betasync.Mapping
		provider string
		values   []string
		want     []string
	}{
		// Small hand-written mapping.
		{"identity", small, "anthropic", []string{"a-1,b-1"}, []string{"a-1", "b-1"}},
		{"sorted output", small, "anthropic", []string{"b-1,a-1"}, []string{"a-1", "b-1"}},
		{"sorted bytewise, upper case first", small, "anthropic", []string{"b-1,Z-1,a-1"}, []string{"Z-1", "a-1", "b-1"}},
		{"white space around items", small, "anthropic", []string{"  b-1 ,\ta-1\r\n"}, []string{"a-1", "b-1"}},
		{"unicode white space trimmed", small, "anthropic", []string{"\u00a0a-1\u2003"}, []string{"a-1"}},
		{"Python's separators \\x1c-\\x1f trimmed", small, "anthropic", []string{"\x1ca-1\x1f, \x1db-1\x1e"}, []string{"a-1", "b-1"}},
		{"next line and ideographic space trimmed", small, "anthropic", []string{"\u0085a-1\u3000,\u205fb-1\u2029"}, []string{"a-1", "b-1"}},
		{"zero-width space is not white space", small, "anthropic", []string{"\u200ba-1,b-1\u200b"}, nil},
		{"invalid UTF-8 is not white space", small, "anthropic", []string{"\xffa-1,b-1\xff"}, nil},
		{"white space only after Python's strip", small, "anthropic", []string{"\x1c\x1d,\x1e \x1f,a-1"}, []string{"a-1"}},
		{"inner space kept", small, "anthropic", []string{" x y ,x  y"}, []string{"x y"}},
		{"empty items", small, "anthropic", []string{",,a-1,, ,b-1,"}, []string{"a-1", "b-1"}},
		{"only commas and blanks", small, "anthropic", []string{",, , \t,"}, nil},
		{"empty value", small, "anthropic", []string{""}, nil},
		{"no values", small, "anthropic", nil, nil},
		{"input duplicates", small, "anthropic", []string{"a-1,a-1, a-1 ,a-1"}, []string{"a-1"}},
		{"duplicates across lines", small, "anthropic", []string{"a-1", "a-1", "b-1,a-1"}, []string{"a-1", "b-1"}},
		{"rename", small, "bedrock", []string{"b-1"}, []string{"renamed-b"}},
		{"two betas to one name", small, "bedrock", []string{"old-1,b-1"}, []string{"renamed-b"}},
		{"renamed name not accepted as input", small, "bedrock", []string{"renamed-b"}, nil},
		{"null dropped", small, "anthropic", []string{"c-1"}, nil},
		{"null dropped, others kept", small, "bedrock", []string{"n-1,c-1,a-1"}, []string{"a-1", "c-1"}},
		{"absent dropped", small, "anthropic", []string{"zzz,a-1"}, []string{"a-1"}},
		{"case-sensitive beta", small, "anthropic", []string{"A-1,B-1,z-1"}, nil},
		{"not split on semicolons", small, "anthropic", []string{"a-1;b-1"}, nil},
		{"not split on spaces", small, "anthropic", []string{"a-1 b-1"}, nil},
		{"multiple header lines merged", small, "anthropic", []string{"b-1", "zzz, c-1", "a-1"}, []string{"a-1", "b-1"}},
		{"unknown provider", small, "openai", []string{"a-1,b-1"}, nil},
		{"provider name case-sensitive", small, "Anthropic", []string{"a-1"}, nil},
		{"reserved key is no provider", small, "provider_aliases", []string{"a-1"}, nil},
		{"description is no provider", small, "description", []string{"a-1"}, nil},
		{"empty provider name", small, "", []string{"a-1"}, nil},
		{"alias to anthropic", small, "claude", []string{"a-1,c-1,b-1"}, []string{"a-1", "b-1"}},
		{"alias to bedrock renames", small, "aws", []string{"old-1,a-1"}, []string{"a-1", "renamed-b"}},
		{"alias to empty section", small, "empty_alias", []string{"a-1"}, nil},
		{"empty section", small, "empty", []string{"a-1"}, nil},

		// Upstream-shaped fixture.
		{"upstream: claude code to bedrock", up, "bedrock", []string{claudeCodeHeader},
			[]string{"context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14", "tool-search-tool-2025-10-19"}},
		{"upstream: claude code to bedrock_converse", up, "bedrock_converse", []string{claudeCodeHeader},
			[]string{"context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14"}},
		{"upstream: claude code to vertex_ai", up, "vertex_ai", []string{claudeCodeHeader},
			[]string{"context-1m-2025-08-07", "interleaved-thinking-2025-05-14", "tool-search-tool-2025-10-19"}},
		{"upstream: claude code to anthropic", up, "anthropic", []string{claudeCodeHeader},
			[]string{"advanced-tool-use-2025-11-20", "context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14", "interleaved-thinking-2025-05-14"}},
		{"upstream: claude code to azure_ai", up, "azure_ai", []string{claudeCodeHeader},
			[]string{"advanced-tool-use-2025-11-20", "context-1m-2025-08-07", "interleaved-thinking-2025-05-14"}},
		{"upstream: claude code to bedrock_mantle", up, "bedrock_mantle", []string{claudeCodeHeader},
			[]string{"claude-code-20250219", "context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14", "interleaved-thinking-2025-05-14", "tool-search-tool-2025-10-19"}},
		{"upstream: claude code to databricks", up, "databricks", []string{claudeCodeHeader},
			[]string{"advanced-tool-use-2025-11-20", "context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14", "interleaved-thinking-2025-05-14"}},
		{"upstream: bedrock rename dedupes", up, "bedrock", []string{"advanced-tool-use-2025-11-20,tool-search-tool-2025-10-19"},
			[]string{"tool-search-tool-2025-10-19"}},
		{"upstream: bedrock rename dedupes across lines", up, "bedrock", []string{"tool-search-tool-2025-10-19", "advanced-tool-use-2025-11-20"},
			[]string{"tool-search-tool-2025-10-19"}},
		{"upstream: case-sensitive", up, "anthropic", []string{"Context-1M-2025-08-07"}, nil},
		{"upstream: case-sensitive, others kept", up, "anthropic", []string{"Context-1M-2025-08-07, effort-2025-11-24"}, []string{"effort-2025-11-24"}},
		{"upstream: null everywhere", up, "anthropic", []string{"bash_20241022,text_editor_20250124"}, nil},
		{"upstream: unsupported on vertex", up, "vertex_ai", []string{"effort-2025-11-24, files-api-2025-04-14"}, nil},
		{"upstream: unknown provider", up, "openai", []string{claudeCodeHeader}, nil},
		{"upstream: messy header", up, "anthropic", []string{" effort-2025-11-24 ,, oauth-2025-04-20,effort-2025-11-24,", "", "  ", "compact-2026-01-12"},
			[]string{"compact-2026-01-12", "effort-2025-11-24", "oauth-2025-04-20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.AppendBetas(nil, tt.provider, tt.values...)
			if tt.want == nil {
				assert.Nil(t, got)
			} else {
				assert.Equal(t, tt.want, got)
			}
			assert.Equal(t, got, tt.m.Betas(tt.provider, tt.values...))
			assert.True(t, slices.IsSorted(got))
			assert.Len(t, slices.Compact(slices.Clone(got)), len(got), "no duplicates")

			joined := strings.Join(tt.want, ",")
			assert.Equal(t, joined, tt.m.HeaderValue(tt.provider, tt.values...))
			assert.Equal(t, "x: "+joined, string(tt.m.AppendHeaderValue([]byte("x: "), tt.provider, tt.values...)))
			assert.Equal(t, joined, string(tt.m.AppendHeaderValue(nil, tt.provider, tt.values...)))
		})
	}
}

func TestAppendBetasKeepsPrefix(t *testing.T) {
	m := betasync.Default()
	want := []string{"context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14", "tool-search-tool-2025-10-19"}

	tests := []struct {
		name   string
		prefix []string
		spare  int
	}{
		{"unsorted prefix with a name that is appended again", []string{"zzz", "context-1m-2025-08-07", "aaa"}, 0},
		{"prefix with spare capacity", []string{"zzz", "tool-search-tool-2025-10-19"}, 16},
		{"empty but non-nil", []string{}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]string, len(tt.prefix), len(tt.prefix)+tt.spare)
			copy(dst, tt.prefix)
			out := m.AppendBetas(dst, "bedrock", claudeCodeHeader)
			require.Len(t, out, len(tt.prefix)+len(want))
			assert.Equal(t, tt.prefix, out[:len(tt.prefix)], "prefix untouched")
			assert.Equal(t, tt.prefix, dst, "caller's slice untouched")
			assert.Equal(t, want, out[len(tt.prefix):], "appended part sorted and de-duplicated")
		})
	}

	t.Run("nothing survives returns dst as is", func(t *testing.T) {
		dst := []string{"keep"}
		out := m.AppendBetas(dst, "bedrock", "interleaved-thinking-2025-05-14")
		assert.Equal(t, []string{"keep"}, out)
		out = m.AppendBetas(dst, "openai", claudeCodeHeader)
		assert.Equal(t, []string{"keep"}, out)
	})

	t.Run("successive appends are sorted runs", func(t *testing.T) {
		var out []string
		out = m.AppendBetas(out, "bedrock", "effort-2025-11-24")
		out = m.AppendBetas(out, "bedrock", "context-1m-2025-08-07,compact-2026-01-12")
		assert.Equal(t, []string{"effort-2025-11-24", "compact-2026-01-12", "context-1m-2025-08-07"}, out)
	})

	t.Run("AppendHeaderValue keeps the byte prefix", func(t *testing.T) {
		buf := make([]byte, 0, 256)
		buf = append(buf, "Anthropic-Beta: "...)
		out := m.AppendHeaderValue(buf, "bedrock", claudeCodeHeader)
		assert.Equal(t, "Anthropic-Beta: "+strings.Join(want, ","), string(out))
		assert.Equal(t, "Anthropic-Beta: ", string(buf))
	})

	t.Run("AppendHeaderValue beyond its scratch space", func(t *testing.T) {
		var doc strings.Builder
		doc.WriteString(`{"anthropic":{`)
		var names []string
		for i := range 40 {
			name := "beta-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
			names = append(names, name)
			if i > 0 {
				doc.WriteString(",")
			}
			doc.WriteString(`"` + name + `":"` + name + `"`)
		}
		doc.WriteString(`}}`)
		big := mustParseDoc(t, doc.String())
		rev := slices.Clone(names)
		slices.Reverse(rev)
		got := big.AppendHeaderValue(nil, "anthropic", strings.Join(rev, ","))
		assert.Equal(t, strings.Join(names, ","), string(got))
	})
}

func TestFilterHeader(t *testing.T) {
	small := mustParseDoc(t, smallDoc)

	tests := []struct {
		name     string
		provider string
		header   http.Header
		want     []string
		wantLine string // "" means the header must be gone
	}{
		{"single line", "anthropic", http.Header{"Anthropic-Beta": {"b-1,a-1"}}, []string{"a-1", "b-1"}, "a-1,b-1"},
		{"repeated lines merged", "anthropic", http.Header{"Anthropic-Beta": {"b-1", "a-1, c-1", "b-1"}}, []string{"a-1", "b-1"}, "a-1,b-1"},
		{"rename through alias", "aws", http.Header{"Anthropic-Beta": {"old-1", "b-1"}}, []string{"renamed-b"}, "renamed-b"},
		{"nothing survives", "anthropic", http.Header{"Anthropic-Beta": {"c-1,zzz"}}, nil, ""},
		{"empty line", "anthropic", http.Header{"Anthropic-Beta": {""}}, nil, ""},
		{"no lines", "anthropic", http.Header{"Anthropic-Beta": {}}, nil, ""},
		{"unknown provider drops all", "openai", http.Header{"Anthropic-Beta": {"a-1"}}, nil, ""},
		{"no header", "anthropic", http.Header{}, nil, ""},
		{"lower-case key set directly", "anthropic", http.Header{"anthropic-beta": {"b-1"}}, []string{"b-1"}, "b-1"},
		{"upper-case key set directly", "anthropic", http.Header{"ANTHROPIC-BETA": {"a-1"}}, []string{"a-1"}, "a-1"},
		{"canonical and non-canonical keys merged", "anthropic", http.Header{"Anthropic-Beta": {"a-1"}, "anthropic-beta": {"b-1", "Z-1"}}, []string{"Z-1", "a-1", "b-1"}, "Z-1,a-1,b-1"},
		{"non-canonical key, nothing survives", "anthropic", http.Header{"anthropic-beta": {"c-1"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header.Clone()
			h.Set("Content-Type", "application/json")
			h.Add("X-Other", "1")
			h.Add("X-Other", "2")

			got := small.FilterHeader(h, tt.provider)
			if tt.want == nil {
				assert.Empty(t, got)
			} else {
				assert.Equal(t, tt.want, got)
			}

			var keys []string
			for k := range h {
				if strings.EqualFold(k, betasync.HeaderName) {
					keys = append(keys, k)
				}
			}
			if tt.wantLine == "" {
				assert.Empty(t, keys, "header must be removed")
			} else {
				assert.Equal(t, []string{betasync.HeaderName}, keys, "one canonical key")
				assert.Equal(t, []string{tt.wantLine}, h.Values(betasync.HeaderName), "one merged line")
			}
			assert.Equal(t, "application/json", h.Get("Content-Type"))
			assert.Equal(t, []string{"1", "2"}, h.Values("X-Other"))
		})
	}
}

func TestAppendBetasConcurrent(t *testing.T) {
	m := betasync.Default()
	want := m.Betas("bedrock", claudeCodeHeader)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			buf := make([]string, 0, 16)
			for range 500 {
				buf = m.AppendBetas(buf[:0], "bedrock", claudeCodeHeader)
				if !assert.Equal(t, want, buf) {
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestAppendBetasZeroAllocs(t *testing.T) {
	m := betasync.Default()
	buf := make([]string, 0, 16)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = m.AppendBetas(buf[:0], "bedrock", claudeCodeHeader)
	})
	assert.Zero(t, allocs, "AppendBetas with a caller buffer must not allocate")
	assert.Equal(t, []string{"context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14", "tool-search-tool-2025-10-19"}, buf)

	t.Run("several header lines", func(t *testing.T) {
		lines := []string{"claude-code-20250219, interleaved-thinking-2025-05-14", "context-1m-2025-08-07", "advanced-tool-use-2025-11-20,,"}
		allocs := testing.AllocsPerRun(1000, func() {
			buf = m.AppendBetas(buf[:0], "vertex_ai", lines...)
		})
		assert.Zero(t, allocs)
	})
}

func TestAppendHeaderValueZeroAllocs(t *testing.T) {
	m := betasync.Default()
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = m.AppendHeaderValue(buf[:0], "bedrock", claudeCodeHeader)
	})
	assert.Zero(t, allocs, "AppendHeaderValue with a caller buffer must not allocate")
	assert.Equal(t, "context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14,tool-search-tool-2025-10-19", string(buf))
}

// pythonWhiteSpace holds every code point Python 3's str.isspace accepts, as
// printed by
//
//	python3 -c 'import sys; print([hex(c) for c in range(sys.maxunicode+1) if chr(c).isspace()])'
const pythonWhiteSpace = "\t\n\v\f\r\x1c\x1d\x1e\x1f \u0085\u00a0\u1680" +
	"\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" +
	"\u2028\u2029\u202f\u205f\u3000"

// pyStrip is Python's str.strip() with no argument, written independently of
// the code under test.
func pyStrip(s string) string { return strings.Trim(s, pythonWhiteSpace) }

func TestTrimSpaceIsPythonStrip(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue // not encodable in UTF-8
		}
		c := string(r)
		for _, s := range []string{c, c + "x" + c, c + c + "a b" + c + c, "x" + c, c + "x"} {
			if got, want := betasync.TrimSpace(s), pyStrip(s); got != want {
				t.Fatalf("trimSpace(%q) = %q, Python's strip gives %q", s, got, want)
			}
		}
	}
	for _, s := range []string{"", " ", "\xff", " \xff ", "\xff\u3000", "\u3000\xfe", "\xe2\x80", " \xe2\x80\x80", "\u200ba\u200b", "\u180ea"} {
		assert.Equal(t, pyStrip(s), betasync.TrimSpace(s), "%q", s)
	}
}

// FuzzAppendBetas compares AppendBetas with a direct transcription of
// LiteLLM's filter (split on commas, strip as Python does, skip empty items,
// look up, drop null, set, sort), and the body path of FilterRequest with
// LiteLLM's filter of a body array (strip each item, no split, look up).
func FuzzAppendBetas(f *testing.F) {
	f.Add("bedrock", claudeCodeHeader, "")
	f.Add("anthropic", " Context-1M-2025-08-07 ,,context-1m-2025-08-07", "effort-2025-11-24")
	f.Add("vertex_ai", "advanced-tool-use-2025-11-20,tool-search-tool-2025-10-19", ",")
	f.Add("openai", "a,b", "c")
	f.Add("bedrock", "\x1ccontext-1m-2025-08-07\x1f,\u3000effort-2025-11-24\u0085", "\u200bcompact-2026-01-12")
	f.Add("bedrock_converse", "context-1m-2025-08-07,effort-2025-11-24", " effort-2025-11-24\xff")
	m := parseFixture(f)

	f.Fuzz(func(t *testing.T, provider, line1, line2 string) {
		oracle := func(items []string) []string {
			set := map[string]bool{}
			for _, item := range items {
				if name, ok := m.Lookup(provider, pyStrip(item)); ok {
					set[name] = true
				}
			}
			return slices.Sorted(maps.Keys(set))
		}

		var items []string
		for _, line := range []string{line1, line2} {
			for item := range strings.SplitSeq(line, ",") {
				if item = pyStrip(item); item != "" {
					items = append(items, item)
				}
			}
		}
		want := oracle(items)
		got := m.AppendBetas(nil, provider, line1, line2)
		require.Equal(t, want, got)
		require.Equal(t, strings.Join(want, ","), m.HeaderValue(provider, line1, line2))

		// Body path: the same lines as array items, not split on commas.
		body, err := json.Marshal(map[string][]string{"anthropic_beta": {line1, line2}})
		require.NoError(t, err)
		var sent struct {
			Betas []string `json:"anthropic_beta"`
		}
		require.NoError(t, json.Unmarshal(body, &sent)) // invalid UTF-8 became U+FFFD
		want = oracle(sent.Betas)

		h := http.Header{}
		out, err := m.FilterRequest(provider, h, body)
		require.NoError(t, err)
		var placed struct {
			Betas  []string `json:"anthropic_beta"`
			Nested struct {
				Betas []string `json:"anthropic_beta"`
			} `json:"additionalModelRequestFields"`
		}
		require.NoError(t, json.Unmarshal(out, &placed))
		found := map[string]bool{}
		for _, name := range slices.Concat(placed.Betas, placed.Nested.Betas) {
			found[name] = true
		}
		if v := h.Get(betasync.HeaderName); v != "" {
			for name := range strings.SplitSeq(v, ",") {
				found[name] = true
			}
		}
		require.Equal(t, want, slices.Sorted(maps.Keys(found)))
	})
}
