package betasync_test

import (
	"net/http"
	"testing"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/litellmstyle"
)

func BenchmarkAppendBetas(b *testing.B) {
	m := betasync.Default()
	buf := make([]string, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendBetas(buf[:0], "bedrock", claudeCodeHeader)
	}
	if len(buf) != 3 {
		b.Fatalf("got %q", buf)
	}
}

func BenchmarkAppendBetasParallel(b *testing.B) {
	m := betasync.Default()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]string, 0, 16)
		ran := false
		for pb.Next() {
			buf = m.AppendBetas(buf[:0], "bedrock", claudeCodeHeader)
			ran = true
		}
		if ran && len(buf) != 3 {
			b.Errorf("got %q", buf)
		}
	})
}

func BenchmarkAppendHeaderValue(b *testing.B) {
	m := betasync.Default()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendHeaderValue(buf[:0], "bedrock", claudeCodeHeader)
	}
}

// BenchmarkHeaderValue is the allocating convenience form, as a baseline.
func BenchmarkHeaderValue(b *testing.B) {
	m := betasync.Default()
	var s string
	b.ReportAllocs()
	for b.Loop() {
		s = m.HeaderValue("bedrock", claudeCodeHeader)
	}
	if s == "" {
		b.Fatal("empty")
	}
}

func BenchmarkFilterHeader(b *testing.B) {
	m := betasync.Default()
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		h[betasync.HeaderName] = []string{claudeCodeHeader}
		m.FilterHeader(h, "anthropic")
	}
}

func BenchmarkFilterRequestBedrock(b *testing.B) {
	m := betasync.Default()
	body := []byte(bedrockInvokeBody)
	h := http.Header{}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		h[betasync.HeaderName] = []string{claudeCodeHeader}
		if _, err := m.FilterRequest("bedrock", h, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data := fixture(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := betasync.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiteLLMStyleBaseline transcribes LiteLLM's filter (split, strip,
// look up in the section as written, skip null, collect in a set, sort) over
// the same data, as the baseline the hot path is measured against.
func BenchmarkLiteLLMStyleBaseline(b *testing.B) {
	section, ok := betasync.Default().Section("bedrock")
	if !ok {
		b.Fatal("no bedrock section")
	}
	var out []string
	b.ReportAllocs()
	for b.Loop() {
		out = litellmstyle.Filter(section, claudeCodeHeader, out)
	}
	if len(out) != 3 {
		b.Fatalf("got %q", out)
	}
}
