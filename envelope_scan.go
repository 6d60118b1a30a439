package betasync

import (
	"encoding/json"
	"strings"
)

// peekVersionFast reads the version of an envelope as Snapshot.MarshalJSON
// writes it: `{"version":N,` first. ok is false for any other shape.
func peekVersionFast(data []byte) (v uint64, ok bool) {
	const prefix = `{"version":`
	if len(data) < len(prefix)+2 || string(data[:len(prefix)]) != prefix {
		return 0, false
	}
	digits := data[len(prefix):]
	i := 0
	for ; i < len(digits) && i < 19 && digits[i] >= '0' && digits[i] <= '9'; i++ {
		v = v*10 + uint64(digits[i]-'0')
	}
	if i == 0 || i == len(digits) || digits[i] != ',' || (digits[0] == '0' && i > 1) {
		return 0, false
	}
	return v, true
}

// splitEnvelope parses an envelope's config member with Parse's fast path
// (parseScan), and returns the envelope without that member (for
// encoding/json, which is then quick) and the config's mapping, not yet
// finished. ok is false when data is not an object with exactly one
// "config" member, well-formed, that the fast path takes; the caller then
// decodes it the long way.
//
// prev, when not nil, is the version decoded before: sections it holds
// byte for byte are shared rather than parsed again (scanner.reuse).
func splitEnvelope(data []byte, prev *Mapping) (rest []byte, m *Mapping, warnings []string, ok bool) {
	sc := scanner{s: string(data), src: data, prev: prev}
	sc.ws()
	if !sc.consume('{') {
		return nil, nil, nil, false
	}
	rest = make([]byte, 0, 512)
	rest = append(rest, '{')
	sc.ws()
	if sc.consume('}') {
		return nil, nil, nil, false // no config
	}
	for {
		keyStart := sc.i
		key, ok := sc.str()
		if !ok || !sc.colon() {
			return nil, nil, nil, false
		}
		if key == "config" {
			// Parsed in place, by Parse's fast path.
			if m != nil {
				return nil, nil, nil, false
			}
			start := sc.i
			if m, warnings, ok = sc.mapping(); !ok || sc.i-start > MaxConfigSize {
				return nil, nil, nil, false
			}
		} else if !sc.skip(0) {
			return nil, nil, nil, false
		}
		switch {
		case key == "config":
		case strings.EqualFold(key, "config"):
			return nil, nil, nil, false // encoding/json would match it to config
		default:
			if len(rest) > 1 {
				rest = append(rest, ',')
			}
			rest = append(rest, data[keyStart:sc.i]...)
		}
		sc.ws()
		if sc.consume(',') {
			sc.ws()
			continue
		}
		if !sc.consume('}') {
			return nil, nil, nil, false
		}
		break
	}
	sc.ws()
	if sc.i != len(sc.s) || m == nil {
		return nil, nil, nil, false
	}
	return append(rest, '}'), m, warnings, true
}

// skip moves past one JSON value, checking its structure loosely: strings
// and nesting exactly, numbers and literals only by their characters. What
// it passes is decoded strictly afterwards (encoding/json for the envelope's
// members, Parse for the config), so a malformed number still fails there.
func (sc *scanner) skip(depth int) bool {
	if depth > 64 || sc.i >= len(sc.s) {
		return false
	}
	switch c := sc.s[sc.i]; c {
	case '"':
		for sc.i++; sc.i < len(sc.s); sc.i++ {
			switch c := sc.s[sc.i]; {
			case c == '"':
				sc.i++
				return true
			case c == '\\':
				sc.i++
			case c < 0x20:
				return false
			}
		}
		return false
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		sc.i++
		sc.ws()
		if sc.consume(closing) {
			return true
		}
		for {
			if c == '{' {
				if sc.i >= len(sc.s) || sc.s[sc.i] != '"' || !sc.skip(depth+1) || !sc.colon() {
					return false
				}
			}
			if !sc.skip(depth + 1) {
				return false
			}
			sc.ws()
			if sc.consume(',') {
				sc.ws()
				continue
			}
			return sc.consume(closing)
		}
	default:
		start := sc.i
		for sc.i < len(sc.s) && strings.IndexByte("-+.0123456789eEtruefalsn", sc.s[sc.i]) >= 0 {
			sc.i++
		}
		return sc.i > start
	}
}

// unmarshalFast is Snapshot.UnmarshalJSON without running encoding/json over
// the config: ok is false when it declines (see splitEnvelope) or fails, and
// the caller then decodes the long way, which decides and names the fault.
func (s *Snapshot) unmarshalFast(data []byte, prev *Mapping) bool {
	rest, m, warnings, ok := splitEnvelope(data, prev)
	if !ok {
		return false
	}
	var e envelope
	if err := json.Unmarshal(rest, &e); err != nil {
		return false
	}
	m, err := finish(m, warnings)
	return err == nil && s.fromEnvelope(e, m) == nil
}
