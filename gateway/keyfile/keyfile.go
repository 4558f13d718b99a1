// Package keyfile holds the gateway's own secret key and seals small secrets
// with it at rest: the secret answers that the front desk types for a
// drop-off/pick-up registration are kept sealed until the package is built,
// then erased, so the database never holds them in plain text.
//
// Sealing is NaCl secretbox (XSalsa20-Poly1305) with a random 24-byte nonce
// per message; the key is 32 random bytes in a file readable by its owner
// only.
package keyfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/nacl/secretbox"
)

// ErrOpen reports a sealed value that does not open with this key: it was
// sealed with another key or has been altered.
var ErrOpen = errors.New("keyfile: sealed value does not open with this key")

// Key is a gateway's secret key.
type Key struct{ k [32]byte }

// LoadOrCreate reads the key at path, creating it (mode 0600) when the
// file does not exist. A new key is written and synced under a temporary
// name, linked into place and its directory synced: a crash leaves no key
// file or a whole one, and the key is on disk before anything is sealed
// with it (a lost key loses every answer sealed with it).
func LoadOrCreate(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != 32 {
			return nil, fmt.Errorf("keyfile: %s holds %d bytes, want 32", path, len(b))
		}
		k := &Key{}
		copy(k.k[:], b)
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	k := &Key{}
	if _, err := rand.Read(k.k[:]); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if err := writeNew(path, k.k[:]); errors.Is(err, fs.ErrExist) {
		// Another process created the key first: use that one.
		return LoadOrCreate(path)
	} else if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return k, nil
}

// writeNew writes data to path durably, failing with fs.ErrExist when
// path exists.
func writeNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".key-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Link, unlike rename, does not replace a key another process made.
	if err := os.Link(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Seal encrypts and authenticates plaintext.
func (k *Key) Seal(plaintext []byte) ([]byte, error) {
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return secretbox.Seal(nonce[:], plaintext, &nonce, &k.k), nil
}

// Open reverses Seal.
func (k *Key) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < 24+secretbox.Overhead {
		return nil, ErrOpen
	}
	var nonce [24]byte
	copy(nonce[:], sealed)
	out, ok := secretbox.Open(nil, sealed[24:], &nonce, &k.k)
	if !ok {
		return nil, ErrOpen
	}
	return out, nil
}
