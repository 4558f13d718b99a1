package dopu_test

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"dicomgate/platform/dopu"
	"dicomgate/platform/dopu/rijndael"
)

func TestPostEncryptionChunkSize(t *testing.T) {
	for pre, want := range map[int]int{1: 32, 31: 32, 32: 64, 33: 64, 100: 128, 4 << 20: 4<<20 + 32} {
		if got := dopu.PostEncryptionChunkSize(pre); got != want {
			t.Errorf("PostEncryptionChunkSize(%d) = %d, want %d", pre, got, want)
		}
	}
}

func TestChunkRoundTrip(t *testing.T) {
	const answer = "chunky bacon"
	k, err := dopu.NewKey(answer, dopu.HMACSHA256AES256, detRand(20))
	if err != nil {
		t.Fatal(err)
	}
	// The package key and IV, derived independently, to decrypt each chunk
	// by hand the way the SDK's BlobStream encrypted it.
	dk := handPBKDF2SHA1([]byte(answer), []byte(k.Salt()), dopu.DefaultIterations, 64)
	block, err := rijndael.NewCipher(dk[:32])
	if err != nil {
		t.Fatal(err)
	}
	r := detRand(21)
	for _, pre := range []int{100, 64, 1} {
		post := dopu.PostEncryptionChunkSize(pre)
		for _, n := range []int{0, 1, pre - 1, pre, pre + 1, 5 * pre, 5*pre + 3} {
			if n < 0 {
				continue
			}
			data := make([]byte, n)
			r.Read(data)
			enc, err := k.NewChunkEncrypter(bytes.NewReader(data), pre, r)
			if err != nil {
				t.Fatal(err)
			}
			var stream, plainSeen []byte
			count := 0
			for {
				c, err := enc.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Index != count || c.Offset != int64(count*post) || c.PlaintextOffset != int64(count*pre) {
					t.Fatalf("pre %d n %d: chunk %d has index %d offset %d/%d", pre, n, count, c.Index, c.Offset, c.PlaintextOffset)
				}
				wantPlain := min(pre, n-count*pre)
				if len(c.Plaintext) != wantPlain || !bytes.Equal(c.Plaintext, data[count*pre:count*pre+wantPlain]) {
					t.Fatalf("pre %d n %d chunk %d: plaintext %d bytes", pre, n, count, len(c.Plaintext))
				}
				if want := wantPlain - wantPlain%32 + 32; len(c.Ciphertext) != want {
					t.Fatalf("pre %d n %d chunk %d: ciphertext %d bytes, want %d", pre, n, count, len(c.Ciphertext), want)
				}
				if c.Last != ((count+1)*pre >= n) {
					t.Fatalf("pre %d n %d chunk %d: Last = %v", pre, n, count, c.Last)
				}
				// Hand decryption: fresh CBC with the package IV per chunk.
				h := make([]byte, len(c.Ciphertext))
				cipher.NewCBCDecrypter(block, dk[32:]).CryptBlocks(h, c.Ciphertext)
				if pad := int(h[len(h)-1]); pad != len(h)-wantPlain || !bytes.Equal(h[:wantPlain], c.Plaintext) {
					t.Fatalf("pre %d n %d chunk %d: hand decryption mismatch (pad %d)", pre, n, count, pad)
				}
				plainSeen = append(plainSeen, c.Plaintext...)
				stream = append(stream, c.Ciphertext...)
				count++
			}
			if want := (n + pre - 1) / pre; count != want {
				t.Fatalf("pre %d n %d: %d chunks, want %d", pre, n, count, want)
			}
			if !bytes.Equal(plainSeen, data) {
				t.Fatalf("pre %d n %d: plaintexts do not reassemble", pre, n)
			}
			dec, err := k.NewChunkDecrypter(iotest.HalfReader(bytes.NewReader(stream)), pre)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(iotest.OneByteReader(dec))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("pre %d n %d: decrypter err %v, equal %v", pre, n, err, bytes.Equal(got, data))
			}
			// Read gives the same encrypted stream length.
			enc2, err := k.NewChunkEncrypter(bytes.NewReader(data), pre, r)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := io.ReadAll(enc2)
			if err != nil || len(s2) != len(stream) {
				t.Fatalf("pre %d n %d: Read stream %d bytes (%v), want %d", pre, n, len(s2), err, len(stream))
			}
			dec2, _ := k.NewChunkDecrypter(bytes.NewReader(s2), pre)
			if got, err := io.ReadAll(dec2); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("pre %d n %d: Read stream does not decrypt: %v", pre, n, err)
			}
		}
	}
}

func TestChunkErrors(t *testing.T) {
	k, err := dopu.NewKey("chunk errors", dopu.HMACSHA256AES256, detRand(22))
	if err != nil {
		t.Fatal(err)
	}
	other, err := dopu.NewKey("another answer", dopu.HMACSHA256AES256, detRand(22))
	if err != nil {
		t.Fatal(err)
	}
	const pre = 100
	data := make([]byte, 10*pre+7)
	detRand(23).Read(data)
	enc, err := k.NewChunkEncrypter(bytes.NewReader(data), pre, detRand(24))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(enc)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		key    *dopu.Key
		pre    int
		stream []byte
	}{
		"truncated mid block":  {k, pre, stream[:len(stream)-5]},
		"missing middle block": {k, pre, append(append([]byte(nil), stream[:128]...), stream[160:]...)},
		"wrong chunk size":     {k, 64, stream},
		"wrong key":            {other, pre, stream},
		"chunk of padding":     {k, pre, append(append([]byte(nil), stream...), stream[:32]...)},
	} {
		dec, err := tc.key.NewChunkDecrypter(bytes.NewReader(tc.stream), tc.pre)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(dec)
		if !errors.Is(err, dopu.ErrCorruptChunk) && bytes.Equal(got, data) {
			t.Errorf("%s: decrypted without error", name)
		}
		if err == nil {
			t.Errorf("%s: no error (got %d bytes)", name, len(got))
		}
	}
	// Dropping whole trailing chunks cannot be seen at chunk level (chunks
	// carry no MAC or count): the plaintext is a prefix, and the caller's
	// content-length / SHA256Block check is what catches it.
	dec, _ := k.NewChunkDecrypter(bytes.NewReader(stream[:len(stream)-32]), pre)
	if got, err := io.ReadAll(dec); err != nil || !bytes.Equal(got, data[:10*pre]) {
		t.Errorf("dropped last chunk: %d bytes, %v", len(got), err)
	}
	src := iotest.ErrReader(errors.New("disk on fire"))
	e, _ := k.NewChunkEncrypter(src, pre, nil)
	if _, err := e.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("read error not reported: %v", err)
	}
	for _, n := range []int{0, -1, dopu.MaxChunkSize + 1} {
		if _, err := k.NewChunkEncrypter(bytes.NewReader(nil), n, nil); !errors.Is(err, dopu.ErrChunkSize) {
			t.Errorf("chunk size %d: %v", n, err)
		}
		if _, err := k.NewChunkDecrypter(bytes.NewReader(nil), n); !errors.Is(err, dopu.ErrChunkSize) {
			t.Errorf("chunk size %d: %v", n, err)
		}
	}
	k3, err := dopu.NewKey("triple des", dopu.HMACSHA13DES, detRand(25))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k3.NewChunkEncrypter(bytes.NewReader(nil), pre, nil); !errors.Is(err, dopu.ErrUnsupportedAlgorithm) {
		t.Errorf("3DES chunking: %v", err)
	}
}

// patternReader yields n bytes without holding them.
type patternReader struct{ left int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.left)
	for i := range b[:n] {
		b[i] = byte(i)
	}
	p.left -= n
	return int(n), nil
}

// BenchmarkChunkEncrypt measures streamed-blob encryption throughput with a
// 4 MiB pre-encryption chunk.
func BenchmarkChunkEncrypt(b *testing.B) {
	k, err := dopu.NewKey("benchmark answer", dopu.HMACSHA256AES256, detRand(26))
	if err != nil {
		b.Fatal(err)
	}
	const size = 16 << 20
	b.SetBytes(size)
	for b.Loop() {
		enc, err := k.NewChunkEncrypter(&patternReader{left: size}, 4<<20, detRand(27))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, enc); err != nil {
			b.Fatal(err)
		}
	}
}
