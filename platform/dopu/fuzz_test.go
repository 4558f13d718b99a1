package dopu_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/platform/dopu"
)

// FuzzUnmarshalDataXML: arbitrary data-xml never panics; what parses and
// marshals parses back to the same package.
func FuzzUnmarshalDataXML(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.data.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`<password-protected-package><encrypt-algorithm><algorithm-name>none</algorithm-name></encrypt-algorithm></password-protected-package>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := dopu.UnmarshalDataXML(data)
		if err != nil {
			var fe *dopu.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		b, err := p.MarshalDataXML()
		if err != nil {
			return // parsed but not sealable (e.g. none, odd key-length)
		}
		q, err := dopu.UnmarshalDataXML(b)
		if err != nil || q.Algorithm != p.Algorithm || q.Salt != p.Salt || q.IterationCount != p.IterationCount || q.KeyLength != p.KeyLength {
			t.Fatalf("re-parse of %q: %+v %v, want %+v", b, q, err, p)
		}
	})
}

// FuzzOpen: arbitrary ciphertext under the golden packages' keys never
// panics and never opens to anything but the golden contents (the only
// ciphertexts that authenticate differ from the golden one at most in
// padding).
func FuzzOpen(f *testing.F) {
	things, err := os.ReadFile(filepath.Join("testdata", "things.xml"))
	if err != nil {
		f.Fatal(err)
	}
	type keyed struct {
		key *dopu.Key
		pkg *dopu.Package
	}
	var keys []keyed
	for i, alg := range goldenAlgs {
		p := loadGolden(f, alg)
		k, err := dopu.DeriveKey(goldenAnswer, p)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, keyed{k, p})
		f.Add(uint8(i), p.Ciphertext)
		f.Add(uint8(i), p.Ciphertext[:len(p.Ciphertext)-8])
		f.Add(uint8(i), p.Ciphertext[:16])
	}
	f.Fuzz(func(t *testing.T, which uint8, ct []byte) {
		kp := keys[int(which)%len(keys)]
		q := *kp.pkg
		q.Ciphertext = ct
		got, err := kp.key.Open(&q)
		if err != nil {
			if !errors.Is(err, dopu.ErrWrongAnswer) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !bytes.Equal(got, things) {
			t.Fatalf("forged ciphertext opened to %q", got)
		}
	})
}

// FuzzChunkDecrypter: an arbitrary encrypted blob stream never panics and
// yields at most one chunk's worth of plaintext per encrypted chunk.
func FuzzChunkDecrypter(f *testing.F) {
	p := loadGolden(f, dopu.HMACSHA256AES256)
	k, err := dopu.DeriveKey(goldenAnswer, p)
	if err != nil {
		f.Fatal(err)
	}
	things, err := os.ReadFile(filepath.Join("testdata", "things.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, pre := range []uint16{1, 64, 100} {
		enc, err := k.NewChunkEncrypter(bytes.NewReader(things), int(pre), detRand(30))
		if err != nil {
			f.Fatal(err)
		}
		stream, err := io.ReadAll(enc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pre, stream)
		f.Add(pre, stream[:len(stream)-1])
	}
	f.Fuzz(func(t *testing.T, pre uint16, stream []byte) {
		dec, err := k.NewChunkDecrypter(bytes.NewReader(stream), int(pre))
		if err != nil {
			if pre != 0 {
				t.Fatalf("chunk size %d refused: %v", pre, err)
			}
			return
		}
		got, err := io.ReadAll(dec)
		if err != nil && !errors.Is(err, dopu.ErrCorruptChunk) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if len(got) > len(stream) {
			t.Fatalf("%d plaintext bytes from %d encrypted", len(got), len(stream))
		}
	})
}
