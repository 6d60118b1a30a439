package betasync

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nkeys"
)

// Signed versions. A worker given a signing key (an nkeys seed, Ed25519)
// signs every version it stores; pods given trusted public keys apply only
// versions signed by one of them, from events and from KV alike. The
// signature covers the version number and the hash of the document, so
// neither a forged document nor a genuine document under another version
// number (a replayed event claiming version 2^64-1) passes.

// signedBytes is what a signature covers.
func signedBytes(version uint64, hash string) []byte {
	return []byte("betasync-version-v1\n" + strconv.FormatUint(version, 10) + "\n" + hash + "\n")
}

// Signer signs versions with one key.
type Signer struct {
	kp  nkeys.KeyPair
	pub string
}

// NewSigner reads an nkeys seed (for example a user seed, "SU...", as
// `betasync keygen` prints).
func NewSigner(seed string) (*Signer, error) {
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(seed)))
	if err != nil {
		return nil, fmt.Errorf("signing seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("signing seed: %w", err)
	}
	return &Signer{kp: kp, pub: pub}, nil
}

// PublicKey is the key pods must trust.
func (s *Signer) PublicKey() string { return s.pub }

// Sign signs snap as it is numbered now (set Version first).
func (s *Signer) Sign(snap *Snapshot) error {
	sig, err := s.kp.Sign(signedBytes(snap.Version, snap.Hash()))
	if err != nil {
		return fmt.Errorf("signing version %d: %w", snap.Version, err)
	}
	snap.Signer, snap.Signature = s.pub, base64.RawURLEncoding.EncodeToString(sig)
	return nil
}

// Verifier checks versions against trusted public keys; more than one
// allows rotating the signing key without a gap.
type Verifier struct {
	keys map[string]nkeys.KeyPair
}

// NewVerifier trusts the given public keys. It needs at least one.
func NewVerifier(publicKeys ...string) (*Verifier, error) {
	v := &Verifier{keys: map[string]nkeys.KeyPair{}}
	for _, k := range publicKeys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		kp, err := nkeys.FromPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("trusted key %q: %w", k, err)
		}
		v.keys[k] = kp
	}
	if len(v.keys) == 0 {
		return nil, fmt.Errorf("no trusted key given")
	}
	return v, nil
}

// Verify reports, as an EINVALID error, a version that is unsigned, signed
// by a key not trusted, or whose signature does not match its number and
// document.
func (v *Verifier) Verify(snap *Snapshot) error {
	if snap.Signature == "" {
		return Errorf(EINVALID, "version %d is not signed", snap.Version)
	}
	kp, ok := v.keys[snap.Signer]
	if !ok {
		return Errorf(EINVALID, "version %d is signed by %q, which is not a trusted key", snap.Version, snap.Signer)
	}
	sig, err := base64.RawURLEncoding.DecodeString(snap.Signature)
	if err == nil {
		err = kp.Verify(signedBytes(snap.Version, snap.Hash()), sig)
	}
	if err != nil {
		return Errorf(EINVALID, "version %d: the signature does not match its version and document", snap.Version)
	}
	return nil
}
