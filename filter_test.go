package betasync_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

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

// FuzzAppendBetas compares AppendBetas with a direct transcription of
// LiteLLM's filter: split on commas, strip, look up, drop null, set, sort.
func FuzzAppendBetas(f *testing.F) {
	f.Add("bedrock", claudeCodeHeader, "")
	f.Add("anthropic", " Context-1M-2025-08-07 ,,context-1m-2025-08-07", "effort-2025-11-24")
	f.Add("vertex_ai", "advanced-tool-use-2025-11-20,tool-search-tool-2025-10-19", ",")
	f.Add("openai", "a,b", "c")
	m := parseFixture(f)

	f.Fuzz(func(t *testing.T, provider, line1, line2 string) {
		set := map[string]bool{}
		for _, line := range []string{line1, line2} {
			for item := range strings.SplitSeq(line, ",") {
				item = strings.TrimSpace(item)
				if item == "" {
					continue
				}
				if name, ok := m.Lookup(provider, item); ok {
					set[name] = true
				}
			}
		}
		var want []string
		for name := range set {
			want = append(want, name)
		}
		slices.Sort(want)

		got := m.AppendBetas(nil, provider, line1, line2)
		require.Equal(t, want, got)
		require.Equal(t, strings.Join(want, ","), m.HeaderValue(provider, line1, line2))
	})
}
