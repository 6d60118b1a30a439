package betasync_test

import (
	"testing"

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
