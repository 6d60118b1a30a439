package publisher_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/golden"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/publisher"
)

// goldenDoc is a small mapping with a rename, a null and an alias.
var goldenDoc = []byte(`{"description": "golden", "provider_aliases": {"bedrock_invoke": "bedrock"},
  "anthropic": {"context-1m-2025-08-07": "context-1m-2025-08-07"},
  "bedrock": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19", "context-1m-2025-08-07": null}}`)

// TestAnnounceGolden pins the bytes of a config.updated event: pods in
// other languages and the nats CLI read them.
func TestAnnounceGolden(t *testing.T) {
	m, err := betasync.Parse(goldenDoc)
	require.NoError(t, err)
	env := betasync.NewSnapshot(m, betasync.SourceRemote, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	env.Version, env.URL, env.ETag, env.LastModified = 7, "https://example.test/m.json", `"e1"`, "Sun, 01 Mar 2026 11:00:00 GMT"
	data := received(t, publisher.SubjectConfigUpdated, func(pub *nats.Conn) error {
		return publisher.Announce(t.Context(), pub, env)
	})
	golden.Assert(t, "../testdata/golden/config_updated.json", data)
}

// TestAnnounceSignedGolden pins a signed version's event: the signer and
// the signature (Ed25519 signatures are deterministic) after the config.
func TestAnnounceSignedGolden(t *testing.T) {
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, make([]byte, 32))
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	signer, err := betasync.NewSigner(string(seed))
	require.NoError(t, err)

	m, err := betasync.Parse(goldenDoc)
	require.NoError(t, err)
	env := betasync.NewSnapshot(m, betasync.SourceRemote, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	env.Version = 7
	require.NoError(t, signer.Sign(env))
	data := received(t, publisher.SubjectConfigUpdated, func(pub *nats.Conn) error {
		return publisher.Announce(t.Context(), pub, env)
	})
	golden.Assert(t, "../testdata/golden/config_updated_signed.json", data)

	var back betasync.Snapshot
	require.NoError(t, json.Unmarshal(data, &back))
	v, err := betasync.NewVerifier(signer.PublicKey())
	require.NoError(t, err)
	assert.NoError(t, v.Verify(&back))
}

// TestBeaconGolden pins the bytes of a config.current beacon.
func TestBeaconGolden(t *testing.T) {
	m, err := betasync.Parse(goldenDoc)
	require.NoError(t, err)
	data := received(t, publisher.SubjectConfigCurrent, func(pub *nats.Conn) error {
		return publisher.PublishBeacon(pub, 7, m.Hash())
	})
	golden.Assert(t, "../testdata/golden/config_current.json", data)
}

// received returns the bytes a subscriber to subject receives when publish
// runs on another connection of a real server.
func received(t *testing.T, subject string, publish func(pub *nats.Conn) error) []byte {
	t.Helper()
	srv := natstest.Start(t)
	pub, subConn := srv.Connect(t), srv.Connect(t)
	sub, err := subConn.SubscribeSync(subject)
	require.NoError(t, err)
	require.NoError(t, subConn.Flush())
	require.NoError(t, publish(pub))
	msg, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err)
	return msg.Data
}
