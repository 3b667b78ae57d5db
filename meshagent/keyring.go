package meshagent

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/memberlist"

	"github.com/abing-net/abing/auth"
)

// Key sizes memberlist accepts: AES-128, -192 or -256.
var keySizes = []int{16, 24, 32}

// LoadKeyring reads a keyring file: base64 keys of 16, 24 or 32 bytes,
// one a line (# starts a comment); the first encrypts, all decrypt, so
// that keys can be rotated. Like a keys file, only its owner may read it.
func LoadKeyring(path string) (*memberlist.Keyring, error) {
	b, err := auth.ReadPrivate(path, "keyring")
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil || !slices.Contains(keySizes, len(k)) {
			// The line is not quoted: it may be a key.
			return nil, fmt.Errorf("keyring %s line %d: want a base64 key of 16, 24 or 32 bytes (abing mesh keygen makes one)", path, i+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("keyring %s: no key", path)
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return kr, nil
}
