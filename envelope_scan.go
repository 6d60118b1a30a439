package betasync

import (
	"bytes"
	"encoding/json"
	"strings"
	"unsafe"
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
// (parseScan), decodes into e the envelope's plain members (see member),
// and returns the other members, for encoding/json (nil when there are
// none), and the config's mapping, not yet finished. ok is false when data
// is not an object with exactly one "config" member, well-formed, that the
// fast path takes, or has a member twice (as encoding/json matches names:
// case aside); the caller then decodes it the long way.
//
// prev, when not nil, is the version decoded before: sections it holds
// byte for byte are shared rather than parsed again (scanner.reuse).
//
// owned: data is never modified again, so the scanner reads it as a string
// in place (keys, names and the canonical source are substrings of it)
// instead of copying it first.
func splitEnvelope(data []byte, prev *Mapping, e *envelope, owned bool) (rest []byte, m *Mapping, warnings []string, ok bool) {
	var src string
	if owned {
		src = unsafe.String(unsafe.SliceData(data), len(data)) //nolint:gosec // data is never modified again (DecodeOwnedAfter's contract)
	} else {
		src = string(data)
	}
	sc := scanner{s: src, src: data, prev: prev}
	sc.ws()
	if !sc.consume('{') {
		return nil, nil, nil, false
	}
	sc.ws()
	if sc.consume('}') {
		return nil, nil, nil, false // no config
	}
	var seen [16]string
	keys := seen[:0]
	for {
		keyStart := sc.i
		key, ok := sc.str()
		if !ok || !sc.colon() {
			return nil, nil, nil, false
		}
		for _, k := range keys {
			if strings.EqualFold(k, key) {
				return nil, nil, nil, false // encoding/json keeps the last; the long way decides
			}
		}
		keys = append(keys, key)
		switch {
		case key == "config":
			// Parsed in place, by Parse's fast path.
			start := sc.i
			if m, warnings, ok = sc.mapping(); !ok || sc.i-start > MaxConfigSize {
				return nil, nil, nil, false
			}
		case strings.EqualFold(key, "config"):
			return nil, nil, nil, false // encoding/json would match it to config
		case sc.member(key, e):
		default:
			if !sc.skip(0) {
				return nil, nil, nil, false
			}
			if rest == nil {
				rest = make([]byte, 0, 256)
				rest = append(rest, '{')
			} else {
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
	if rest != nil {
		rest = append(rest, '}')
	}
	return rest, m, warnings, true
}

// member decodes the value at sc.i into e's field named key, exactly as
// encoding/json would, when key is the field's exact name and the value has
// the plain form that the field's type takes: a string (escapes are decoded
// by encoding/json, see str), a timestamp that time.Time decodes itself, or
// an unsigned integer without sign, fraction or exponent that fits. It
// reports false, leaving sc where it was, for anything else (null, another
// type, changes, overrides, an unknown member), which encoding/json then
// decodes from the rest.
func (sc *scanner) member(key string, e *envelope) bool {
	var str *string
	var num *uint64
	switch key {
	case "version":
		num = &e.Version
	case "rolled_back_from":
		num = &e.RolledBack
	case "hash":
		str = &e.Hash
	case "source":
		str = &e.Source
	case "url":
		str = &e.URL
	case "etag":
		str = &e.ETag
	case "last_modified":
		str = &e.LastModified
	case "actor":
		str = &e.Actor
	case "signer":
		str = &e.Signer
	case "signature":
		str = &e.Signature
	case "fetched_at":
		start := sc.i
		if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
			return false
		}
		end := strings.IndexByte(sc.s[start+1:], '"')
		if end < 0 {
			return false
		}
		end += start + 2
		raw := sc.src[start:end]
		if bytes.IndexByte(raw, '\\') >= 0 || e.FetchedAt.UnmarshalJSON(raw) != nil {
			return false // encoding/json decodes it, or names the fault
		}
		sc.i = end
		return true
	default:
		return false
	}
	start := sc.i
	if str != nil {
		if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
			return false
		}
		v, ok := sc.str()
		if !ok {
			sc.i = start
			return false
		}
		*str = v
		return true
	}
	var v uint64
	digits := 0
	for ; sc.i < len(sc.s) && sc.s[sc.i] >= '0' && sc.s[sc.i] <= '9' && digits < 19; sc.i++ {
		v = v*10 + uint64(sc.s[sc.i]-'0')
		digits++
	}
	if digits == 0 || (sc.s[start] == '0' && digits > 1) || (sc.i < len(sc.s) && strings.IndexByte("0123456789.eE-+", sc.s[sc.i]) >= 0) {
		sc.i = start
		return false
	}
	*num = v
	return true
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
func (s *Snapshot) unmarshalFast(data []byte, prev *Mapping, owned bool) bool {
	var e envelope
	rest, m, warnings, ok := splitEnvelope(data, prev, &e, owned)
	if !ok {
		return false
	}
	if rest != nil {
		if err := json.Unmarshal(rest, &e); err != nil {
			return false
		}
	}
	m, err := finish(m, warnings)
	return err == nil && s.fromEnvelope(e, m) == nil
}
