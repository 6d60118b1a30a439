package betasync_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	betasync "github.com/betasync/betasync"
)

// FuzzParseScan checks Parse's fast path against the token-walk reference
// parser: whatever the fast path accepts, the reference accepts with the
// same result, and the canonical encoding is what encoding/json writes.
func FuzzParseScan(f *testing.F) {
	f.Add(fixture(f))
	f.Add(betasync.Default().JSON())
	for _, s := range []string{
		``, `{}`, `[]`, `null`, ` { } `, `{"anthropic":{}}`, `{"anthropic":{}} `,
		`{"anthropic":{"a":"b","c":null}}`,
		"\t{ \"anthropic\" :\n{ \"a\" : \"b\" , \"c\" : null } }\r\n",
		`{"description":"x","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":null},"bedrock":{"a":"b"}}`,
		`{"provider_aliases":{"claude":"nope"},"anthropic":{}}`,
		`{"provider_aliases":{"anthropic":"bedrock"},"anthropic":{},"bedrock":{}}`,
		`{"provider_aliases":{"a":"a"},"anthropic":{}}`,
		`{"anthropic":{"a":1}}`, `{"anthropic":{"a":nul}}`, `{"anthropic":{"a":nullx}}`,
		`{"anthropic":{"a":"b"}} x`, `{"anthropic":{"a":"b"}}{}`,
		`{"anthropic":{"a\u0000":"b"}}`, `{"anthropic":{"a":"b\u0000"}}`,
		`{"anthropic":{"a":"a","a":"b"}}`, `{"anthropic":{},"anthropic":{}}`,
		`{"description":"a","description":"b","anthropic":{}}`,
		`{"description":null,"anthropic":{}}`, `{"description":"","anthropic":{}}`,
		`{"anthropic":1,"anthropic":{" a":"b","a,b":null,"":"c","\u001cd":"d"}}`,
		`{"anthropic":{" a":"b","a,b":null,"":"c","\u001cd":"d"}," x":{}}`,
		`{"anthropic":{"a":" b"}}`, `{"anthropic":{"a":""}}`, `{"anthropic":{"a":"b,c"}}`,
		`{"provider_aliases":{"bedrock":"anthropic","claude":"bedrock","x":"y","x":"anthropic"},"anthropic":{"a":"b"},"bedrock":{"a":"c"}}`,
		`{"anthropic":{"a":"a",}}`, `{"anthropic":{}`, `{"anthropic":{"a":"b"`,
		`{"description":"\ud800<&>","bedrock":{"\u2028":"\u00e9"}}`,
		`{"bedrock":{"a\"b":"c\\d","\/":"\b\f\n\r\t"}}`, `{"bedrock":{"a\x":"b"}}`,
		"{\"bedrock\":{\"\xff\":\"\xfe\"}}", "{\"bedrock\":{\"a\x7f\":\"\u2029\"}}",
		"{\"bedrock\":{\"a\":\"b\x01\"}}", "\xef\xbb\xbf{\"anthropic\":{}}",
		`{"vertex_ai":{"a":"b"},"description":"` + strings.Repeat("é", 40) + `"}`,
		`{"openai":{"a":"b"}}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(checkParseScan)
}

// checkParseScan is FuzzParseScan's property.
func checkParseScan(t *testing.T, data []byte) {
	{
		want, wantErr := betasync.ParseTokens(data)
		got, err := betasync.Parse(data)
		if wantErr != nil {
			require.Error(t, err)
			require.Equal(t, wantErr.Error(), err.Error())
			return
		}
		require.NoError(t, err)
		require.Equal(t, string(want.JSON()), string(got.JSON()))
		require.Equal(t, string(betasync.LegacyCanonical(got)), string(got.JSON()), "canonical encoding")
		require.Equal(t, want.Hash(), got.Hash())
		require.Equal(t, want.Warnings(), got.Warnings())
		require.Equal(t, want.Description(), got.Description())
		require.Equal(t, want.Aliases(), got.Aliases())
		require.Equal(t, want.Providers(), got.Providers())
		for _, p := range want.Providers() {
			ws, _ := want.Section(p)
			gs, _ := got.Section(p)
			require.Equal(t, ws, gs, "section %q", p)
		}
		for _, p := range append(want.Providers(), "claude", "x", "a") {
			for b := range strings.SplitSeq("a,b,c,a\"b,/", ",") {
				wn, wok := want.Lookup(p, b)
				gn, gok := got.Lookup(p, b)
				require.Equal(t, wok, gok)
				require.Equal(t, wn, gn)
			}
		}
	}
}

// TestParseScanMutations runs the fast path's property over thousands of
// seeded mutations of real documents (flipped, dropped, inserted and
// repeated bytes), so that it is exercised beyond the seed corpus without
// the fuzzing engine.
func TestParseScanMutations(t *testing.T) {
	seeds := [][]byte{fixture(t), betasync.Default().JSON(),
		[]byte(`{"description":"x","provider_aliases":{"claude":"anthropic"},"anthropic":{"a":null,"b":"c"},"bedrock":{"a":"b"}}`)}
	const alphabet = "{}[]\",: \t\n0123456789-+.eEtrufalsn\\/u\x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xff"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		data := slices.Clone(seeds[i%len(seeds)])
		for range 1 + rng.IntN(3) {
			pos := rng.IntN(len(data))
			switch rng.IntN(4) {
			case 0: // replace
				data[pos] = alphabet[rng.IntN(len(alphabet))]
			case 1: // delete
				data = slices.Delete(data, pos, pos+1)
			case 2: // insert
				data = slices.Insert(data, pos, alphabet[rng.IntN(len(alphabet))])
			default: // repeat a span (repeated keys, members)
				end := min(len(data), pos+1+rng.IntN(64))
				data = slices.Insert(data, end, data[pos:end]...)
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkParseScan(t, data) })
	}
}

// TestParseScanTakesTheFixture makes sure the fast path, not the reference
// parser, handles real documents.
func TestParseScanTakesTheFixture(t *testing.T) {
	for name, doc := range map[string][]byte{"fixture": fixture(t), "default": betasync.Default().JSON()} {
		t.Run(name, func(t *testing.T) {
			_, ok, err := betasync.ParseScan(doc)
			require.NoError(t, err)
			require.True(t, ok)
		})
	}
}
