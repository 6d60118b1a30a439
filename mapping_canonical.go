package betasync

import (
	"slices"
	"unicode/utf8"
)

// appendCanonical appends the canonical encoding: what encoding/json (HTML
// escaping off) makes of the document as a map, so sorted keys and no white
// space, written directly rather than through reflection.
func (m *Mapping) appendCanonical(b []byte) []byte {
	keys := make([]string, 0, len(m.providers)+2)
	if m.description != "" {
		keys = append(keys, KeyDescription)
	}
	if len(m.aliases) > 0 {
		keys = append(keys, KeyAliases)
	}
	for p := range m.providers {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	var inner []string // scratch for a section's keys
	b = append(b, '{')
	for i, key := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, key)
		b = append(b, ':')
		switch key {
		case KeyDescription:
			b = appendJSONString(b, m.description)
		case KeyAliases:
			inner = sortedKeys(inner[:0], m.aliases)
			b = append(b, '{')
			for j, alias := range inner {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, alias)
				b = append(b, ':')
				b = appendJSONString(b, m.aliases[alias])
			}
			b = append(b, '}')
		default:
			section := m.providers[key]
			inner = sortedKeys(inner[:0], section)
			b = append(b, '{')
			for j, beta := range inner {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, beta)
				b = append(b, ':')
				if name := section[beta]; name != nil {
					b = appendJSONString(b, *name)
				} else {
					b = append(b, "null"...)
				}
			}
			b = append(b, '}')
		}
	}
	return append(b, '}')
}

// canonicalSizeHint is a close upper guess of the canonical encoding's
// length, so that it is built in one allocation.
func (m *Mapping) canonicalSizeHint() int {
	n := len(m.description) + 64
	for alias, target := range m.aliases {
		n += len(alias) + len(target) + 6
	}
	for p, section := range m.providers {
		n += len(p) + 6
		for beta, name := range section {
			n += len(beta) + 8
			if name != nil {
				n += len(*name)
			}
		}
	}
	return n
}

func sortedKeys[V any](into []string, m map[string]V) []string {
	for k := range m {
		into = append(into, k)
	}
	slices.Sort(into)
	return into
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json encodes a string with HTML
// escaping off: invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029 are
// escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
