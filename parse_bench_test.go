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
