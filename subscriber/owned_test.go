package subscriber_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
)

// TestEventBuffersAreNotReused: the subscriber decodes each event in the
// NATS message's own buffer, without copying it (DecodeOwnedAfter), so the
// versions it applied refer into those buffers. If the client reused a
// buffer for a later message, an earlier version's canonical form (and so
// its lookups) would change under it. Every version applied here still
// hashes to what it declared after 300 more messages went through.
func TestEventBuffersAreNotReused(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	p := newPod(t, srv.Connect(t))
	const versions = 300
	var applied []*betasync.Snapshot
	for v := 1; v <= versions; v++ {
		announce(t, nc, doc(t, v), uint64(v))
		applied = append(applied, p.waitVersion(t, uint64(v)))
	}
	for _, snap := range applied {
		sum := sha256.Sum256(snap.JSON()) // the mapping's canonical form
		assert.Equal(t, snap.Hash(), hex.EncodeToString(sum[:]), "version %d", snap.Version)
		assert.Equal(t, doc(t, int(snap.Version)).Hash(), snap.Hash(), "version %d", snap.Version)
	}
}
