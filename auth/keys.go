package auth

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/abing-net/abing/train"
)

// Key is a named shared secret.
type Key struct {
	Name   string
	Secret []byte
}

// Secret length limits, bytes.
const (
	MinSecret = 16
	MaxSecret = 64
)

// maxLine bounds a keys file line: a name, a separator and a 64-byte secret
// in hex fit with room to spare.
const maxLine = 256

// ParseKeys reads a keys file; name is used in error messages, which give
// the line number.
func ParseKeys(r io.Reader, name string) ([]Key, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, maxLine), maxLine)
	var keys []Key
	seen := map[string]bool{}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"NAME HEX-SECRET\", got %d fields", name, line, len(f))
		}
		if err := ValidName(f[0]); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("%s:%d: key %q defined twice", name, line, f[0])
		}
		secret, err := hex.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: secret of key %q is not hex: %w", name, line, f[0], err)
		}
		if len(secret) < MinSecret || len(secret) > MaxSecret {
			return nil, fmt.Errorf("%s:%d: secret of key %q is %d bytes, want %d to %d", name, line, f[0], len(secret), MinSecret, MaxSecret)
		}
		seen[f[0]] = true
		keys = append(keys, Key{Name: f[0], Secret: secret})
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, maxLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", name)
	}
	return keys, nil
}

// ValidName checks a key name.
func ValidName(n string) error {
	if n == "" || len(n) > train.KeyNameLen {
		return fmt.Errorf("key name %q: want 1 to %d characters", n, train.KeyNameLen)
	}
	for _, c := range []byte(n) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("key name %q: only A-Z a-z 0-9 . _ - allowed", n)
		}
	}
	return nil
}

// LoadKeys reads a keys file after checking that only its owner can read it.
func LoadKeys(path string) ([]Key, error) {
	b, err := ReadPrivate(path, "keys file")
	if err != nil {
		return nil, err
	}
	return ParseKeys(bytes.NewReader(b), path)
}

// ReadPrivate reads a file that holds secrets (what names it in errors):
// a regular file of at most 1 MiB that only its owner can read.
func ReadPrivate(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file", what, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s: mode %04o lets group or others read it; run chmod 600 %s", what, path, perm, path)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f, 1<<20+1)); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if buf.Len() > 1<<20 {
		return nil, fmt.Errorf("%s %s: larger than 1 MiB", what, path)
	}
	return buf.Bytes(), nil
}

// Pick chooses the key named name, or the only key when name is empty.
func Pick(keys []Key, name string) (Key, error) {
	if name == "" {
		if len(keys) == 1 {
			return keys[0], nil
		}
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Name
		}
		return Key{}, fmt.Errorf("%d keys (%s): name the one to use", len(keys), strings.Join(names, ", "))
	}
	for _, k := range keys {
		if k.Name == name {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("no key named %q", name)
}
