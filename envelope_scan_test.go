package betasync_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
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

// checkEnvelope is FuzzEnvelope's property.
func checkEnvelope(t *testing.T, data []byte) {
	{
		want, wantErr := betasync.UnmarshalSnapshotJSON(data)
		var got betasync.Snapshot
		err := got.UnmarshalJSON(data)
		if wantErr != nil {
			require.Error(t, err)
			require.Equal(t, wantErr.Error(), err.Error())
		} else {
			require.NoError(t, err)
			wj, err := json.Marshal(want)
			require.NoError(t, err)
			gj, err := json.Marshal(&got)
			require.NoError(t, err)
			require.Equal(t, string(wj), string(gj))
			require.Equal(t, want.Warnings(), got.Warnings())
		}
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
