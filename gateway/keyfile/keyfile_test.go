package keyfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "gateway.key")
	k, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	sealed, err := k.Seal([]byte("Fluffy the cat"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("Fluffy")) {
		t.Fatal("plaintext visible in sealed value")
	}
	again, _ := k.Seal([]byte("Fluffy the cat"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	// The key survives a restart.
	k2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k2.Open(sealed)
	if err != nil || string(got) != "Fluffy the cat" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := LoadOrCreate(filepath.Join(t.TempDir(), "other.key"))
	for name, bad := range map[string][]byte{
		"other key": sealed,
		"tampered":  append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1),
		"short":     sealed[:10],
	} {
		key := k
		if name == "other key" {
			key = other
		}
		if _, err := key.Open(bad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
}

func TestBadKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadOrCreate(path); err == nil {
		t.Fatal("short key file accepted")
	}
}

// TestConcurrentCreate starts several gateways on one new key file at
// once: they all end up with the one key on disk, and no temporary file
// is left behind.
func TestConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.key")
	const n = 8
	keys := make([]*Key, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = LoadOrCreate(path)
		}()
	}
	wg.Wait()
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil || !bytes.Equal(keys[i].k[:], onDisk) {
			t.Fatalf("gateway %d: key differs from the file (%v)", i, errs[i])
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files in the key's directory, want only the key", len(entries))
	}
}
