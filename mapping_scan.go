package betasync

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// parseScan is Parse's fast path: one pass over the bytes, without a
// json.Decoder, for documents of the shape every real mapping has (a
// top-level object of objects of strings and nulls, each key once). It
// returns ok=false for anything else (an error, a repeated key, a value of
// another type, anything it is not sure of), and Parse then runs the
// token-walk parser, which decides and names the fault. So the fast path
// never accepts what the token walk rejects, and when it accepts, the result
// is the same (FuzzParseScan checks both).
func parseScan(data []byte) (*Mapping, []string, bool) {
	sc := scanner{s: string(data), src: data} // one copy; keys and names are substrings of it
	sc.ws()
	m, warnings, ok := sc.mapping()
	if !ok {
		return nil, nil, false
	}
	sc.ws()
	if sc.i != len(sc.s) {
		return nil, nil, false
	}
	return m, warnings, true
}

// mapping reads one mapping document, an object, from sc.i on.
func (sc *scanner) mapping() (*Mapping, []string, bool) {
	begin := sc.i
	sc.plain = true
	var p parser
	m := &Mapping{
		aliases:   map[string]string{},
		providers: make(map[string]map[string]*string, 8),
	}
	var seenDescription, seenAliases bool
	var entries []scanEntry            // scratch, reused by every section
	spans := make([]sectionSpan, 0, 8) // the sections that a later version may share

	if !sc.consume('{') {
		return nil, nil, false
	}
	sc.ws()
	if !sc.consume('}') {
		prev := ""
		for first := true; ; first = false {
			key, ok := sc.str()
			if !ok || !sc.colon() {
				return nil, nil, false
			}
			if !first && key <= prev {
				sc.plain = false
			}
			prev = key
			switch key {
			case KeyDescription:
				if seenDescription {
					return nil, nil, false
				}
				seenDescription = true
				if m.description, ok = sc.str(); !ok {
					return nil, nil, false
				}
			case KeyAliases:
				if seenAliases || !sc.aliases(&p, m.aliases) {
					return nil, nil, false
				}
				seenAliases = true
			default:
				if _, dup := m.providers[key]; dup {
					return nil, nil, false
				}
				if nameFlaw(key) != "" {
					p.checkCallerName(key, "provider name")
				}
				start, warned := sc.i, len(p.warnings)
				section, reused := sc.reuse(key)
				if !reused {
					if section, entries, ok = sc.section(&p, key, entries[:0]); !ok {
						return nil, nil, false
					}
				}
				m.providers[key] = section
				if sc.plain && len(p.warnings) == warned {
					spans = append(spans, sectionSpan{provider: key, start: start - begin, end: sc.i - begin})
				}
			}
			sc.ws()
			if sc.consume(',') {
				sc.ws()
				continue
			}
			if sc.consume('}') {
				break
			}
			return nil, nil, false
		}
	}
	// The canonical encoding leaves out an empty description and empty
	// aliases; otherwise a plain source is canonical, and is kept as is.
	if sc.plain && (!seenDescription || m.description != "") && (!seenAliases || len(m.aliases) > 0) {
		// No copy: a substring, and the hash of the same bytes as given.
		m.canonical = sc.s[begin:sc.i]
		m.hash = hashOf(sc.src[begin:sc.i])
		m.spans = spans
	}
	return m, p.warnings, true
}

type scanEntry struct {
	beta, name string
	null       bool
}

type scanner struct {
	s   string
	src []byte // the bytes s was copied from, unchanged while scanning
	i   int
	// prev, when set, is the version decoded before this one: its plain
	// sections that this document carries byte for byte are shared, not
	// parsed again (reuse).
	prev *Mapping
	// plain stays true while the source is its own canonical encoding: no
	// white space, keys in increasing order, strings with nothing to escape.
	plain bool
}

func (sc *scanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
			sc.plain = false
		default:
			return
		}
	}
}

func (sc *scanner) consume(c byte) bool {
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// colon reads the ':' between a key and its value, with the white space
// around it.
func (sc *scanner) colon() bool {
	sc.ws()
	if !sc.consume(':') {
		return false
	}
	sc.ws()
	return true
}

// str reads a JSON string. Plain ones (no escape, valid UTF-8) are
// substrings of the document; the rest are decoded by encoding/json, which
// gives them the meaning the token walk gives them.
func (sc *scanner) str() (string, bool) {
	if !sc.consume('"') {
		return "", false
	}
	start := sc.i
	var escaped, nonASCII bool
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == '"':
			v := sc.s[start:sc.i]
			sc.i++
			if !escaped && !nonASCII {
				return v, true
			}
			sc.plain = false // non-ASCII may need escaping (U+2028, invalid UTF-8); a rare case
			if !escaped && utf8.ValidString(v) {
				return v, true
			}
			var out string
			if err := json.Unmarshal([]byte(sc.s[start-1:sc.i]), &out); err != nil {
				return "", false
			}
			return out, true
		case c == '\\':
			escaped = true
			sc.i += 2
		case c < 0x20:
			return "", false
		default:
			if c >= utf8.RuneSelf {
				nonASCII = true
			}
			sc.i++
		}
	}
	return "", false
}

// null reads the literal null.
func (sc *scanner) null() bool {
	if len(sc.s)-sc.i >= 4 && sc.s[sc.i:sc.i+4] == "null" {
		sc.i += 4
		return true
	}
	return false
}

// members calls fn for each member of an object, with sc at the value.
func (sc *scanner) members(fn func(key string) bool) bool {
	if !sc.consume('{') {
		return false
	}
	sc.ws()
	if sc.consume('}') {
		return true
	}
	prev := ""
	for first := true; ; first = false {
		key, ok := sc.str()
		if !ok || !sc.colon() {
			return false
		}
		if !first && key <= prev {
			sc.plain = false
		}
		prev = key
		if !fn(key) {
			return false
		}
		sc.ws()
		if sc.consume(',') {
			sc.ws()
			continue
		}
		return sc.consume('}')
	}
}

func (sc *scanner) aliases(p *parser, into map[string]string) bool {
	return sc.members(func(alias string) bool {
		target, ok := sc.str()
		if !ok {
			return false
		}
		if _, dup := into[alias]; dup {
			return false
		}
		if nameFlaw(alias) != "" {
			p.checkCallerName(alias, KeyAliases+": alias")
		}
		into[alias] = target
		return true
	})
}

// section reads one provider's section into a map sized once, with every
// name in one backing array.
func (sc *scanner) section(p *parser, provider string, entries []scanEntry) (map[string]*string, []scanEntry, bool) {
	ok := sc.members(func(beta string) bool {
		e := scanEntry{beta: beta}
		if sc.null() {
			e.null = true
		} else {
			name, ok := sc.str()
			if !ok || nameFlaw(name) != "" {
				return false
			}
			e.name = name
		}
		entries = append(entries, e)
		return true
	})
	if !ok {
		return nil, entries, false
	}
	section := make(map[string]*string, len(entries))
	names := make([]string, len(entries))
	for i, e := range entries {
		if e.null {
			section[e.beta] = nil
		} else {
			names[i] = e.name
			section[e.beta] = &names[i]
		}
		if nameFlaw(e.beta) != "" {
			p.checkBeta(fmt.Sprintf("provider %q", provider), e.beta)
		}
	}
	if len(section) != len(entries) { // a repeated beta
		return nil, entries, false
	}
	return section, entries, true
}

// sectionSpan is where one provider's section lies in a Mapping's
// canonical encoding: a plain section (no white space, keys in increasing
// order, nothing escaped) that gave no warning.
type sectionSpan struct {
	provider   string
	start, end int
}

// reuse returns prev's section for provider when the document carries, at
// sc.i, exactly the bytes prev's section was parsed from, and moves past
// them. The scan is deterministic and reads a value from left to right up
// to its closing brace, so the same bytes give the same section, the same
// end, no warning (spans holds only sections that gave none) and leave
// plain as it was: the result is what section would return, without the
// work. prev's maps are immutable, so sharing them is safe.
func (sc *scanner) reuse(provider string) (map[string]*string, bool) {
	if sc.prev == nil || !sc.plain {
		return nil, false
	}
	spans := sc.prev.spans
	for k := range spans {
		sp := &spans[k]
		if sp.provider != provider {
			continue
		}
		raw := sc.prev.canonical[sp.start:sp.end]
		if len(sc.s)-sc.i < len(raw) || sc.s[sc.i:sc.i+len(raw)] != raw {
			return nil, false
		}
		section, ok := sc.prev.providers[provider]
		if !ok {
			return nil, false
		}
		sc.i += len(raw)
		return section, true
	}
	return nil, false
}
