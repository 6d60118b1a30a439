package betasync_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	betasync "github.com/betasync/betasync"
)

// FuzzEnvelope checks the envelope's fast decoding against encoding/json:
// the same snapshot, or the same error.
func FuzzEnvelope(f *testing.F) {
	snap := betasync.NewSnapshot(parseFixture(f), betasync.SourceRemote, time.Unix(1e9, 0))
	snap.Version = 7
	snap.URL, snap.ETag = "https://example.com/m.json", `"abc"`
	full, err := json.Marshal(snap)
	require.NoError(f, err)
	f.Add(full)
	small := betasync.NewSnapshot(betasync.Default(), betasync.SourceEmbedded, time.Unix(2e9, 0))
	smallJSON, err := json.Marshal(small)
	require.NoError(f, err)
	f.Add(smallJSON)
	for _, s := range []string{
		``, `{}`, `[]`, `{"config":{"anthropic":{}}}`,
		`{"version":3,"hash":"x","config":{"anthropic":{}}}`,
		`{"version":03,"config":{"anthropic":{}}}`,
		`{"version":3,"Config":{"anthropic":{}},"config":{"bedrock":{}}}`,
		`{"config":{"anthropic":{}},"config":{"anthropic":{}}}`,
		`{"version":1,"source":"remote","fetched_at":"2020-01-01T00:00:00Z","changes":[1,2e5,{"a":[true,false,null]}],"config":{"anthropic":{"a":"b"}}}`,
		`{"version":1,"fetched_at":"x","config":{"anthropic":{}}}`,
		`{"version":1,"config":{"anthropic":{}} } x`,
		`{"version":18446744073709551616,"config":{"anthropic":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkEnvelope)
}

// heldMappings are the versions checkEnvelope decodes after (DecodeAfter),
// as a subscriber holds them: none, and the canonical forms of the
// envelopes' seeds, whose sections a mutated envelope mostly still carries.
var heldMappings = sync.OnceValue(func() []*betasync.Mapping {
	upstream, err := os.ReadFile("testdata/litellm_upstream.json")
	if err != nil {
		panic(err)
	}
	held := []*betasync.Mapping{nil}
	for _, doc := range [][]byte{betasync.Default().JSON(), upstream} {
		m, err := betasync.Parse(doc)
		if err == nil {
			m, err = betasync.Parse(m.JSON())
		}
		if err != nil {
			panic(err)
		}
		held = append(held, m)
	}
	return held
})

// checkEnvelope is FuzzEnvelope's property: UnmarshalJSON, and DecodeAfter
// and DecodeOwnedAfter after each of heldMappings, give what encoding/json
// and Parse give.
func checkEnvelope(t *testing.T, data []byte) {
	want, wantErr := betasync.UnmarshalSnapshotJSON(data)
	for i, held := range append([]*betasync.Mapping{nil}, heldMappings()...) {
		for _, owned := range []bool{false, true} {
			var got betasync.Snapshot
			var err error
			switch {
			case owned:
				err = got.DecodeOwnedAfter(bytes.Clone(data), held)
			case i == 0:
				err = got.UnmarshalJSON(data)
			default:
				err = got.DecodeAfter(data, held)
			}
			if wantErr != nil {
				require.Error(t, err)
				require.Equal(t, wantErr.Error(), err.Error())
				continue
			}
			require.NoError(t, err)
			requireSameSnapshot(t, want, &got)
		}
	}
	{
		if json.Valid(data) {
			var head struct {
				Version uint64 `json:"version"`
			}
			headErr := json.Unmarshal(data, &head)
			v, err := betasync.PeekVersion(data)
			if headErr == nil {
				require.NoError(t, err)
				require.Equal(t, head.Version, v)
			}
		}
	}
}

// TestEnvelopeMutations runs FuzzEnvelope's property over seeded mutations
// of real envelopes.
func TestEnvelopeMutations(t *testing.T) {
	snap := betasync.NewSnapshot(betasync.Default(), betasync.SourceRemote, time.Unix(1e9, 0))
	snap.Version = 12
	snap.Changes = betasync.Diff(parseFixture(t), betasync.Default())
	seed, err := json.Marshal(snap)
	require.NoError(t, err)
	const alphabet = "{}[]\",: \t0123456789-.etrufalsn\\u\x00\xff"
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 1500 {
		data := slices.Clone(seed)
		pos := rng.IntN(len(data))
		switch rng.IntN(4) {
		case 0:
			data[pos] = alphabet[rng.IntN(len(alphabet))]
		case 1:
			data = slices.Delete(data, pos, pos+1)
		case 2:
			data = slices.Insert(data, pos, alphabet[rng.IntN(len(alphabet))])
		default:
			end := min(len(data), pos+1+rng.IntN(64))
			data = slices.Insert(data, end, data[pos:end]...)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkEnvelope(t, data) })
	}
}

// requireSameSnapshot checks that got is want: the same envelope, warnings,
// and sections (re-encoded from the maps, so a shared section that does not
// match the canonical bytes would show).
func requireSameSnapshot(t *testing.T, want, got *betasync.Snapshot) {
	t.Helper()
	wj, err := json.Marshal(want)
	require.NoError(t, err)
	gj, err := json.Marshal(got)
	require.NoError(t, err)
	require.Equal(t, string(wj), string(gj))
	require.Equal(t, want.Warnings(), got.Warnings())
	require.Equal(t, string(betasync.LegacyCanonical(want.Mapping)), string(betasync.LegacyCanonical(got.Mapping)))
	require.Equal(t, want.Providers(), got.Providers())
	for _, p := range want.Providers() {
		ws, _ := want.Section(p)
		gs, _ := got.Section(p)
		require.Equal(t, ws, gs, "section %s", p)
	}
	for alias, target := range want.Aliases() {
		require.Equal(t, want.Resolve(alias), got.Resolve(alias), "alias %s -> %s", alias, target)
	}
}

// TestDecodeAfterChain decodes a sequence of versions, each after the one
// decoded before it, as a subscriber does, and checks each against a decode
// from scratch: sections shared along the chain stay right when others
// change, appear, disappear or move.
func TestDecodeAfterChain(t *testing.T) {
	var doc map[string]any
	require.NoError(t, json.Unmarshal(betasync.Default().JSON(), &doc))
	section := func(p string) map[string]any {
		s, ok := doc[p].(map[string]any)
		require.True(t, ok, "section %s", p)
		return s
	}
	steps := []func(){
		func() { doc["description"] = "one" },
		func() { doc["description"] = "two" },
		func() { section("anthropic")["chain-beta-1"] = "chain-beta-1" },
		func() { section("anthropic")["chain-beta-1"] = nil },
		func() { delete(section("bedrock"), "chain-beta-1") },
		func() { doc["zz_new_provider"] = map[string]any{"a": "b"} },
		func() { doc["aa_new_provider"] = map[string]any{"a": "b", "c": nil} },
		func() { delete(doc, "zz_new_provider") },
		func() { doc["aa_new_provider"] = map[string]any{"a": "b"} },
		func() { doc["provider_aliases"] = map[string]any{"zz_alias": "anthropic"} },
		func() { doc["bad provider"] = map[string]any{" padded": "x"} }, // warnings: not shared
		func() { doc["description"] = "three" },
		func() { delete(doc, "bad provider") },
		func() { delete(doc, "description") },
	}
	var held *betasync.Mapping
	for i, step := range steps {
		step()
		raw, err := json.Marshal(doc)
		require.NoError(t, err)
		m, err := betasync.Parse(raw)
		require.NoError(t, err, "step %d", i)
		snap := betasync.NewSnapshot(m, betasync.SourceRemote, time.Unix(1e9, 0))
		snap.Version = uint64(i + 1)
		data, err := json.Marshal(snap)
		require.NoError(t, err)
		want, err := betasync.UnmarshalSnapshotJSON(data)
		require.NoError(t, err)
		var got betasync.Snapshot
		require.NoError(t, got.DecodeAfter(data, held), "step %d", i)
		requireSameSnapshot(t, want, &got)
		held = got.Mapping
	}
}
