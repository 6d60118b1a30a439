package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/litellmstyle"
)

// claudeCodeHeader is what Claude Code sends (as in the root package's
// benchmarks): five betas, three of which Bedrock accepts.
const claudeCodeHeader = "claude-code-20250219,interleaved-thinking-2025-05-14,context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14,advanced-tool-use-2025-11-20"

// bench runs fn repeat times, alternating with baseline, and returns the
// median ns/op and allocs/op of each.
func bench(repeat int, fn, baseline func(*testing.B)) (ns, allocs, baseNs, baseAllocs float64) {
	var a, aa, b, ba []float64
	for range max(repeat, 1) {
		r := testing.Benchmark(fn)
		a, aa = append(a, float64(r.NsPerOp())), append(aa, float64(r.AllocsPerOp()))
		r = testing.Benchmark(baseline)
		b, ba = append(b, float64(r.NsPerOp())), append(ba, float64(r.AllocsPerOp()))
	}
	return median(a), median(aa), median(b), median(ba)
}

func microRows(t *table, doc []byte, repeat int) {
	testing.Init()
	_ = flag.Set("test.benchtime", "300ms")
	m := betasync.Default()
	section, _ := m.Section("bedrock")

	single := func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]string, 0, 16)
		for b.Loop() {
			buf = m.AppendBetas(buf[:0], "bedrock", claudeCodeHeader)
		}
	}
	singleBase := func(b *testing.B) {
		b.ReportAllocs()
		var out []string
		for b.Loop() {
			out = litellmstyle.Filter(section, claudeCodeHeader, out)
		}
	}
	parallel := func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]string, 0, 16)
			for pb.Next() {
				buf = m.AppendBetas(buf[:0], "bedrock", claudeCodeHeader)
			}
		})
	}
	parallelBase := func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var out []string
			for pb.Next() {
				out = litellmstyle.Filter(section, claudeCodeHeader, out)
			}
		})
	}
	lookup := func(name string, fn, base func(*testing.B)) {
		ns, allocs, bns, ballocs := bench(repeat, fn, base)
		t.add(row{
			name:     name,
			measured: fmt.Sprintf("%.0f ns/op, %.0f allocs", ns, allocs),
			baseline: fmt.Sprintf("LiteLLM-style %.0f ns/op, %.0f allocs", bns, ballocs),
			ratio:    ratio(ns, bns),
			target:   "<= 250 ns, 0 allocs",
			met:      yes(ns <= 250 && allocs == 0),
		})
	}
	lookup("lookup bedrock, 1 goroutine", single, singleBase)
	lookup("lookup bedrock, parallel", parallel, parallelBase)

	canonical := mustParse(doc).JSON()
	parse := func(data []byte) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := betasync.Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// The baseline decodes the same bytes into plain maps with
	// encoding/json: no validation, no canonical form, no hash.
	parseBase := func(data []byte) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v map[string]json.RawMessage
				if err := json.Unmarshal(data, &v); err != nil {
					b.Fatal(err)
				}
				for k, raw := range v {
					if k == betasync.KeyDescription {
						continue
					}
					var s map[string]*string
					_ = json.Unmarshal(raw, &s)
				}
			}
		}
	}
	for _, p := range []struct {
		name string
		data []byte
	}{
		{fmt.Sprintf("parse upstream doc (%.1f KB)", float64(len(doc))/1000), doc},
		{fmt.Sprintf("parse canonical doc (%.1f KB)", float64(len(canonical))/1000), canonical},
	} {
		ns, allocs, bns, ballocs := bench(repeat, parse(p.data), parseBase(p.data))
		t.add(row{
			name:     p.name,
			measured: fmt.Sprintf("%.1f µs, %.0f allocs", ns/1000, allocs),
			baseline: fmt.Sprintf("json.Unmarshal to maps %.1f µs, %.0f allocs", bns/1000, ballocs),
			ratio:    ratio(ns, bns),
			target:   "<= 100 µs, a few hundred allocs",
			met:      yes(ns <= 100_000 && allocs <= 500),
		})
	}

	// What every pod does with an event: read the version, decode and
	// validate the envelope, check the hash.
	snap := betasync.NewSnapshot(mustParse(doc), betasync.SourceRemote, time.Unix(1e9, 0))
	snap.Version = 42
	event, err := json.Marshal(snap)
	if err != nil {
		panic(err)
	}
	decode := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := betasync.PeekVersion(event); err != nil {
				b.Fatal(err)
			}
			var got betasync.Snapshot
			if err := got.UnmarshalJSON(event); err != nil {
				b.Fatal(err)
			}
		}
	}
	decodeBase := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v map[string]any
			if err := json.Unmarshal(event, &v); err != nil {
				b.Fatal(err)
			}
		}
	}
	ns, allocs, bns, ballocs := bench(repeat, decode, decodeBase)
	t.add(row{
		name:     fmt.Sprintf("pod decode of an event (%.1f KB)", float64(len(event))/1000),
		measured: fmt.Sprintf("%.1f µs, %.0f allocs", ns/1000, allocs),
		baseline: fmt.Sprintf("json.Unmarshal to map[string]any %.1f µs, %.0f allocs", bns/1000, ballocs),
		ratio:    ratio(ns, bns),
		target:   "-",
		met:      "-",
	})

	// The same, as a subscriber decodes it (DecodeOwnedAfter): after the
	// version it holds, which differs in the description only, as the
	// propagation rows' versions do; the unchanged sections are shared, not
	// decoded, and the message's buffer is read in place (never modified
	// here), not copied.
	var edited map[string]any
	if err := json.Unmarshal(doc, &edited); err != nil {
		panic(err)
	}
	edited[betasync.KeyDescription] = "the version held before"
	heldDoc, err := json.Marshal(edited)
	if err != nil {
		panic(err)
	}
	held := mustParse(mustParse(heldDoc).JSON()) // as a pod holds it: from the canonical form
	after := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := betasync.PeekVersion(event); err != nil {
				b.Fatal(err)
			}
			var got betasync.Snapshot
			if err := got.DecodeOwnedAfter(event, held); err != nil {
				b.Fatal(err)
			}
		}
	}
	ans, aallocs, sns, sallocs := bench(repeat, after, decode)
	t.add(row{
		name:     "  same, after the held version (description changed)",
		measured: fmt.Sprintf("%.1f µs, %.0f allocs", ans/1000, aallocs),
		baseline: fmt.Sprintf("decode from scratch %.1f µs, %.0f allocs", sns/1000, sallocs),
		ratio:    ratio(ans, sns),
		target:   "-",
		met:      "-",
	})
}

func mustParse(doc []byte) *betasync.Mapping {
	m, err := betasync.Parse(doc)
	if err != nil {
		panic(err)
	}
	return m
}
