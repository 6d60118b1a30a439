package betasync_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

func newSigner(t *testing.T) *betasync.Signer {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	s, err := betasync.NewSigner(string(seed))
	require.NoError(t, err)
	return s
}

func TestSignedVersions(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	current, next, stranger := newSigner(t), newSigner(t), newSigner(t)
	v, err := betasync.NewVerifier(current.PublicKey(), " "+next.PublicKey()+" ")
	require.NoError(t, err)

	signed := func(s *betasync.Signer, m *betasync.Mapping, version uint64) *betasync.Snapshot {
		snap := betasync.NewSnapshot(m, betasync.SourceRemote, at)
		snap.Version = version
		require.NoError(t, s.Sign(snap))
		return snap
	}
	m, other := parseFixture(t), mustParseDoc(t, `{"anthropic": {"a": "a"}}`)

	t.Run("signed by a trusted key", func(t *testing.T) {
		assert.NoError(t, v.Verify(signed(current, m, 7)))
		assert.NoError(t, v.Verify(signed(next, m, 7)), "a second key allows rotation")
	})
	t.Run("survives the wire", func(t *testing.T) {
		b, err := json.Marshal(signed(current, m, 7))
		require.NoError(t, err)
		var back betasync.Snapshot
		require.NoError(t, json.Unmarshal(b, &back))
		assert.NoError(t, v.Verify(&back))
	})
	tests := []struct {
		name string
		snap func() *betasync.Snapshot
		want string
	}{
		{"unsigned", func() *betasync.Snapshot { s := betasync.NewSnapshot(m, "remote", at); s.Version = 7; return s }, "not signed"},
		{"untrusted key", func() *betasync.Snapshot { return signed(stranger, m, 7) }, "not a trusted key"},
		{"another version number (a replayed event)", func() *betasync.Snapshot { s := signed(current, m, 7); s.Version = 1<<64 - 1; return s }, "does not match"},
		{"another document", func() *betasync.Snapshot { s := signed(current, m, 7); s.Mapping = other; return s }, "does not match"},
		{"signer swapped", func() *betasync.Snapshot { s := signed(stranger, m, 7); s.Signer = current.PublicKey(); return s }, "does not match"},
		{"garbage signature", func() *betasync.Snapshot { s := signed(current, m, 7); s.Signature = "!!"; return s }, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireInvalid(t, v.Verify(tt.snap()), tt.want)
		})
	}
	t.Run("bad keys", func(t *testing.T) {
		_, err := betasync.NewVerifier()
		require.Error(t, err)
		_, err = betasync.NewVerifier("not-a-key")
		require.Error(t, err)
		_, err = betasync.NewSigner("SUnot-a-seed")
		require.Error(t, err)
	})
}
