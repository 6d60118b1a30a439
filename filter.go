package betasync

import (
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// HeaderName is the request header that carries beta features.
const HeaderName = "Anthropic-Beta"

// Filtering follows LiteLLM's semantics so a LiteLLM user sees the same
// result: header values are split on commas, each item is stripped of white
// space as Python's str.strip() defines it (see trimSpace), and empty items
// are dropped; the provider is resolved through provider_aliases; a beta absent
// from the provider's section, or mapped to null, is dropped; otherwise the
// provider's name for it is emitted; the result is de-duplicated and sorted.
// A provider without a section gets nothing. Beta names match exactly
// (case-sensitive), as in LiteLLM.

// AppendBetas appends to dst the names provider accepts for the betas in
// values (each a raw anthropic-beta header value; pass every header line) and
// returns the extended slice, the appended part sorted and de-duplicated.
// With a dst of sufficient capacity it does not allocate.
func (m *Mapping) AppendBetas(dst []string, provider string, values ...string) []string {
	t := m.tables[provider]
	if t == nil {
		return dst
	}
	start := len(dst)
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			item = trimSpace(item)
			if item == "" {
				continue
			}
			if name := t[item]; name != nil {
				dst = insertSorted(dst, start, *name)
			}
		}
	}
	return dst
}

// appendItems is AppendBetas for betas that come one per item, as in a
// body's anthropic_beta array, merged into the sorted run dst[start:]. As in
// LiteLLM, each item is stripped but not split on commas, so an item holding
// a comma matches no ordinary beta.
func (m *Mapping) appendItems(dst []string, start int, provider string, items []string) []string {
	t := m.tables[provider]
	if t == nil {
		return dst
	}
	for _, item := range items {
		if name := t[trimSpace(item)]; name != nil {
			dst = insertSorted(dst, start, *name)
		}
	}
	return dst
}

// asciiSpace has a bit set for each ASCII character Python's str.isspace
// accepts: \t \n \v \f \r, the separators \x1c-\x1f, and the space. All are
// below 64.
const asciiSpace uint64 = 1<<'\t' | 1<<'\n' | 1<<'\v' | 1<<'\f' | 1<<'\r' |
	1<<0x1c | 1<<0x1d | 1<<0x1e | 1<<0x1f | 1<<' '

// isSpace reports whether Python's str.isspace accepts r: Go's
// unicode.IsSpace plus the ASCII separators \x1c-\x1f.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r < 64 && asciiSpace&(1<<r) != 0
	}
	return unicode.IsSpace(r)
}

// trimSpace is Python's str.strip() without arguments: it removes leading
// and trailing white space as str.isspace defines it, which strings.TrimSpace
// does too except for \x1c-\x1f. ASCII ends take a fast path; it never
// allocates.
func trimSpace(s string) string {
	start := 0
	for ; start < len(s); start++ {
		c := s[start]
		if c >= utf8.RuneSelf {
			return strings.TrimFunc(s[start:], isSpace)
		}
		if c >= 64 || asciiSpace&(1<<c) == 0 {
			break
		}
	}
	stop := len(s)
	for ; stop > start; stop-- {
		c := s[stop-1]
		if c >= utf8.RuneSelf {
			return strings.TrimRightFunc(s[start:stop], isSpace)
		}
		if c >= 64 || asciiSpace&(1<<c) == 0 {
			break
		}
	}
	return s[start:stop]
}

// insertSorted inserts name into the sorted run dst[start:] unless present.
func insertSorted(dst []string, start int, name string) []string {
	i, found := slices.BinarySearch(dst[start:], name)
	if found {
		return dst
	}
	return slices.Insert(dst, start+i, name)
}

// Betas returns the names provider accepts for the betas in values, sorted
// and de-duplicated; nil when nothing survives.
func (m *Mapping) Betas(provider string, values ...string) []string {
	return m.AppendBetas(nil, provider, values...)
}

// AppendHeaderValue appends the filtered, comma-joined header value to dst.
// Nothing is appended when no beta survives.
func (m *Mapping) AppendHeaderValue(dst []byte, provider string, values ...string) []byte {
	var scratch [32]string
	for i, name := range m.AppendBetas(scratch[:0], provider, values...) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, name...)
	}
	return dst
}

// HeaderValue returns the filtered, comma-joined header value; "" when no
// beta survives.
func (m *Mapping) HeaderValue(provider string, values ...string) string {
	return strings.Join(m.Betas(provider, values...), ",")
}

// FilterHeader rewrites h's anthropic-beta header in place for provider:
// repeated lines are merged, the name is matched case-insensitively (also
// under non-canonical keys set directly in the map), and the header is
// removed when nothing survives. It returns the surviving betas.
func (m *Mapping) FilterHeader(h http.Header, provider string) []string {
	betas := m.Betas(provider, headerValues(h)...)
	deleteHeader(h)
	if len(betas) > 0 {
		h.Set(HeaderName, strings.Join(betas, ","))
	}
	return betas
}

// headerValues returns every anthropic-beta line of h, whatever the case of
// the key it is stored under.
func headerValues(h http.Header) []string {
	var values []string
	for k, vs := range h {
		if strings.EqualFold(k, HeaderName) {
			values = append(values, vs...)
		}
	}
	return values
}

// deleteHeader removes every anthropic-beta line from h.
func deleteHeader(h http.Header) {
	for k := range h {
		if strings.EqualFold(k, HeaderName) {
			delete(h, k)
		}
	}
}

// Resolve returns the provider an alias stands for, or provider itself.
func (m *Mapping) Resolve(provider string) string {
	if target, ok := m.aliases[provider]; ok {
		return target
	}
	return provider
}
