package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestChunkFile writes pieces of every alignment through chunkFile, on the
// test's temp dir (a disk: direct I/O) and on /dev/shm where present
// (tmpfs), and checks that the file reads back as written after Sync.
func TestChunkFile(t *testing.T) {
	dirs := []string{t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "chunkfile")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dirs = append(dirs, d)
	}
	buf := alignedBuffer(maxPiece)
	for i := range buf {
		buf[i] = byte(i*131 + i>>11)
	}
	tests := []struct {
		name string
		off  int64
		p    []byte
	}{
		{"aligned whole piece", 0, buf},
		{"aligned piece with unaligned tail", maxPiece, buf[:directMin+100]},
		{"small tail only", 2*maxPiece + directMin + 4096, buf[:10]},
		{"unaligned offset", 3*maxPiece + 1, buf[:directMin]},
		{"unaligned buffer", 4 * maxPiece, buf[1 : directMin+1]},
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, "blob")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := openChunkFile(path, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			if err := f.WriteAt(tc.p, tc.off); err != nil {
				t.Fatalf("%s: %s: %v", dir, tc.name, err)
			}
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			if end := tc.off + int64(len(tc.p)); end > int64(len(got)) || !bytes.Equal(got[tc.off:end], tc.p) {
				t.Errorf("%s: %s: bytes %d-%d differ from what was written", dir, tc.name, tc.off, end-1)
			}
		}
	}
}
