package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// reference computes SHA256Block the obvious way, for comparison.
func reference(data []byte, bs int) []byte {
	var cat []byte
	for off := 0; off < len(data); off += bs {
		end := min(off+bs, len(data))
		s := sha256.Sum256(data[off:end])
		cat = append(cat, s[:]...)
	}
	r := sha256.Sum256(cat)
	return r[:]
}

func TestHasher(t *testing.T) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 31)
	}
	for _, bs := range []int64{1, 7, 100, 999, 1000, 1001, 4096} {
		for _, n := range []int{1, 99, 100, 101, 999, 1000} {
			for _, step := range []int{1, 3, 64, 1000} {
				h := NewHasher(bs)
				for off := 0; off < n; off += step {
					h.Write(data[off:min(off+step, n)])
				}
				if got, want := h.Sum(nil), reference(data[:n], int(bs)); !bytes.Equal(got, want) {
					t.Fatalf("bs %d n %d step %d: %x, want %x", bs, n, step, got, want)
				}
				if h.Len() != int64(n) {
					t.Fatalf("Len = %d", h.Len())
				}
			}
		}
	}
}

func TestHasherOneBlock(t *testing.T) {
	// SPEC §4: a one-block blob hashes to SHA256(SHA256(data)).
	inner := sha256.Sum256([]byte("abc"))
	want := sha256.Sum256(inner[:])
	h := NewHasher(4 << 20)
	h.Write([]byte("abc"))
	got, err := h.RootBase64()
	if err != nil || got != base64.StdEncoding.EncodeToString(want[:]) {
		t.Fatalf("RootBase64 = %s, %v", got, err)
	}
	// Sum does not disturb further writes.
	h.Write([]byte("def"))
	if !bytes.Equal(h.Sum(nil), reference([]byte("abcdef"), 4<<20)) {
		t.Fatal("Sum changed the state")
	}
}

func TestHasherEmptyAndResume(t *testing.T) {
	if _, err := NewHasher(8).Root(); err != ErrEmpty {
		t.Fatalf("empty: %v", err)
	}
	data := []byte("0123456789abcdefXYZ")
	full := NewHasher(8)
	full.Write(data)
	part := NewHasher(8)
	part.Write(data[:16])
	resumed := Resume(8, part.Blocks())
	resumed.Write(data[16:])
	if !bytes.Equal(resumed.Sum(nil), full.Sum(nil)) || resumed.Len() != full.Len() {
		t.Fatal("resumed hash differs")
	}
}

func BenchmarkHasher(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	h := NewHasher(4 << 20)
	for b.Loop() {
		h.Write(buf)
	}
}

func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	h := sha256.New()
	for b.Loop() {
		h.Write(buf)
	}
}
