package betasync_test

import (
	"encoding/json"
	"testing"
	"time"

	betasync "github.com/betasync/betasync"
)

// BenchmarkParseCanonical parses what pods receive: the canonical encoding.
func BenchmarkParseCanonical(b *testing.B) {
	data := parseFixture(b).JSON()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := betasync.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseTokens is the reference parser, the baseline of the fast
// path in the same run.
func BenchmarkParseTokens(b *testing.B) {
	data := fixture(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := betasync.ParseTokens(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPodDecode is what every pod does with a config.updated event:
// read the version, then decode and validate the envelope.
func BenchmarkPodDecode(b *testing.B) {
	snap := betasync.NewSnapshot(parseFixture(b), betasync.SourceRemote, time.Unix(1e9, 0))
	snap.Version = 42
	data, err := json.Marshal(snap)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := betasync.PeekVersion(data); err != nil {
			b.Fatal(err)
		}
		var got betasync.Snapshot
		if err := got.UnmarshalJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPodDecodeJSON is the same through encoding/json, as before.
func BenchmarkPodDecodeJSON(b *testing.B) {
	snap := betasync.NewSnapshot(parseFixture(b), betasync.SourceRemote, time.Unix(1e9, 0))
	snap.Version = 42
	data, err := json.Marshal(snap)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var head struct {
			Version uint64 `json:"version"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			b.Fatal(err)
		}
		var got betasync.Snapshot
		if err := json.Unmarshal(data, &got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPodDecodeAfter is BenchmarkPodDecode as a subscriber runs it,
// with the version it holds (DecodeAfter): the event's sections that are
// byte for byte the held version's are shared, not decoded again. The
// cases: only the description changed (what cmd/betasync-bench's upstream
// serves), one beta renamed in one section, and every section changed
// (nothing to share).
func BenchmarkPodDecodeAfter(b *testing.B) {
	held := editedFixture(b, func(doc map[string]any) { doc["description"] = "held" })
	for _, c := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"description", func(doc map[string]any) { doc["description"] = "next" }},
		{"one-beta", func(doc map[string]any) {
			if section, ok := doc["anthropic"].(map[string]any); ok {
				section["bench-beta-2099-01-01"] = "bench-beta-2099-01-01"
			}
		}},
		{"every-section", func(doc map[string]any) {
			for k, v := range doc {
				if section, ok := v.(map[string]any); ok && k != betasync.KeyAliases {
					section["bench-beta-2099-01-01"] = nil
				}
			}
		}},
	} {
		snap := betasync.NewSnapshot(editedFixture(b, c.edit), betasync.SourceRemote, time.Unix(1e9, 0))
		snap.Version = 43
		data, err := json.Marshal(snap)
		if err != nil {
			b.Fatal(err)
		}
		// DecodeAfter copies the event; "/owned" decodes it as the
		// subscriber does, in the message's own buffer (never modified
		// here), without copying it.
		for _, owned := range []bool{false, true} {
			name := c.name
			if owned {
				name += "/owned"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := betasync.PeekVersion(data); err != nil {
						b.Fatal(err)
					}
					var got betasync.Snapshot
					decode := got.DecodeAfter
					if owned {
						decode = got.DecodeOwnedAfter
					}
					if err := decode(data, held); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// editedFixture parses the upstream fixture after edit, in canonical form.
func editedFixture(tb testing.TB, edit func(map[string]any)) *betasync.Mapping {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fixture(tb), &doc); err != nil {
		tb.Fatal(err)
	}
	edit(doc)
	data, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := betasync.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	// As a pod holds it: decoded from its canonical form.
	if m, err = betasync.Parse(m.JSON()); err != nil {
		tb.Fatal(err)
	}
	return m
}
