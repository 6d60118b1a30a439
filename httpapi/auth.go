package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Roles a key may hold. Admin may do everything; viewer may read the status
// and the current mapping. A keys file may also name LiteLLM's roles
// (litellm.go): proxy_admin is admin, the others may do nothing.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// Key is one API key, stored as the sha256 of the secret.
type Key struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Role   string `json:"role"`

	sum [sha256.Size]byte
}

// Keyring authenticates API keys in constant time.
type Keyring struct {
	keys []Key
}

// NewKeyring returns a keyring with the master key (admin) and keys. A
// master key of "" adds none.
func NewKeyring(master string, keys []Key) (*Keyring, error) {
	kr := &Keyring{}
	if master != "" {
		kr.keys = append(kr.keys, Key{Name: "master", Role: RoleAdmin, sum: sha256.Sum256([]byte(master))})
	}
	for i, k := range keys {
		if k.Name == "" {
			return nil, fmt.Errorf("key %d: name is required", i)
		}
		if k.Role == RoleProxyAdmin {
			k.Role = RoleAdmin
		}
		if k.Role != RoleAdmin && k.Role != RoleViewer && !litellmNonAdminRoles[k.Role] {
			return nil, fmt.Errorf("key %q: role must be %q, %q, or one of LiteLLM's roles (proxy_admin, proxy_admin_viewer, internal_user, internal_user_viewer, org_admin, team, customer), not %q",
				k.Name, RoleAdmin, RoleViewer, k.Role)
		}
		sum, err := hex.DecodeString(k.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("key %q: sha256 must be 64 hex digits", k.Name)
		}
		copy(k.sum[:], sum)
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

// LoadKeys reads a keys file: a JSON array of {"name", "sha256", "role"}.
func LoadKeys(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	const want = `want a JSON array of {"name", "sha256", "role"}`
	// json.Decode accepts null for a slice, and stops after the first
	// value: a file holding null, or an array followed by more text, would
	// load silently. Both are rejected.
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '[' {
		return nil, fmt.Errorf("%s: %s", path, want)
	}
	var keys []Key
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&keys); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, want, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s: unexpected data after the array", path, want)
	}
	return keys, nil
}

// Len returns the number of keys.
func (kr *Keyring) Len() int { return len(kr.keys) }

// authenticate returns the key whose secret is token. Every key is compared,
// in constant time, so timing does not tell which one matched or how far.
func (kr *Keyring) authenticate(token string) (Key, bool) {
	return kr.match(sha256.Sum256([]byte(token)))
}

// match returns the key whose secret's sha256 is sum, comparing every key
// in constant time.
func (kr *Keyring) match(sum [sha256.Size]byte) (Key, bool) {
	var found Key
	ok := 0
	for _, k := range kr.keys {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 {
			found, ok = k, 1
		}
	}
	return found, ok == 1
}

// token extracts the API key. As in LiteLLM, x-litellm-api-key comes first
// (it exists for clients that use Authorization for something else), then
// Authorization: Bearer. It returns "" and a reason when there is none.
func token(r *http.Request) (string, string) {
	if k := strings.TrimSpace(r.Header.Get("X-Litellm-Api-Key")); k != "" {
		return k, ""
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "missing API key: send Authorization: Bearer <key> or x-litellm-api-key"
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", "unsupported Authorization scheme: send Authorization: Bearer <key> or x-litellm-api-key"
	}
	if k := strings.TrimSpace(rest); k != "" {
		return k, ""
	}
	return "", "missing API key after Bearer"
}

func allowed(have, need string) bool {
	return have == RoleAdmin || have == need
}
