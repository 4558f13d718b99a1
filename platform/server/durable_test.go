package server

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCreateDurableFile checks the file and its missing directories are
// made (the syncs themselves cannot be observed without a crash), that an
// existing file is refused, and that a directory sync failure is reported.
func TestCreateDurableFile(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "blobs", "ab", "abcdef")
	if err := createDurableFile(p); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created file: %v, %v", fi, err)
	}
	if err := createDurableFile(p); !os.IsExist(err) {
		t.Fatalf("second create: %v, want exists", err)
	}
	if err := createDurableFile(filepath.Join(root, "blobs", "ab", "abcdeg")); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(filepath.Join(root, "missing")); err == nil {
		t.Fatal("syncDir of a missing directory succeeded")
	}
}
