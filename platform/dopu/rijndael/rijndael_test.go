package rijndael

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Known-answer vectors. None of them was produced by this implementation.
//
// Source "gladman": Brian Gladman's Rijndael vector set (all block/key length
// combinations, plaintext 3243f6a8885a308d313198a2e03707344a4093822299f31d
// 0082efa98ec4e6c8 truncated to the block, key 2b7e151628aed2a6abf7158809cf4f3c
// 762e7160f38b4da56a784d9045190cfe truncated to the key), as reproduced in
// Bouncy Castle's RijndaelTest (bcgit/bc-java,
// core/src/test/java/org/bouncycastle/crypto/test/RijndaelTest.java, cases
// 8-21) and, for the 256-bit block, in the CEX RijndaelTest.
//
// Source "nessie": the NESSIE project's Rijndael-256-256.unverified.test-vectors
// (https://www.cosic.esat.kuleuven.be/nessie/testvectors/bc/rijndael/), set 1
// (one key bit set, zero plaintext) and set 2 (zero key, one plaintext bit
// set), as reproduced in the CEX RijndaelTest vectors and (vector 0 of set 1,
// including its 1000-times-iterated value) in the samson Python test suite.
//
// Source "fips197": FIPS 197 Appendix C (AES = Rijndael with Nb = 4).
var kats = []struct {
	source, key, plain, cipher string
}{
	// 256-bit block (the HealthVault case).
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c8",
		"7d15479076b69a46ffb3b3beae97ad8313f622f67fedb487de9f06b9ed9c8f19"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c8",
		"514f93fb296b5ad16aa7df8b577abcbd484decacccc7fb1f18dc567309ceeffd"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da5",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c8",
		"5d7101727bb25781bf6715b0e6955282b9610e23a43c2eb062699f0ebf5887b2"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d90",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c8",
		"d56c5a63627432579e1dd308b2c8f157b40a4bfb56fea1377b25d3ed3d6dbf80"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c8",
		"a49406115dfb30a40418aafa4869b7c6a886ff31602a7dd19c889dc64f7e4e7a"},
	{"nessie set 1 vector 0", "8000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"e62abce069837b65309be4eda2c0e149fe56c07b7082d3287f592c4a4927a277"},
	{"nessie set 1 vector 1", "4000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"1f00b4dd622c0b2951f25970b0ed47a65f513112daca242b5292ca314917bf94"},
	{"nessie set 1 vector 2", "2000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"2aa9f4be159f9f8777561281c1cc4fcd7435e6e855e222426c309838abd5ffee"},
	{"nessie set 1 vector 3", "1000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"b4adf28c3a85c337aa3150e3032b941aa49f12f911221dd91a62919cad447cfb"},
	{"nessie set 2 vector 0", "0000000000000000000000000000000000000000000000000000000000000000",
		"8000000000000000000000000000000000000000000000000000000000000000",
		"159a08e46e616e6e9978502010daff922eb362e77dcaaf02eaeb7354eb8b8dba"},
	{"nessie set 2 vector 1", "0000000000000000000000000000000000000000000000000000000000000000",
		"4000000000000000000000000000000000000000000000000000000000000000",
		"2756ddecd7558b198962f092d7ba3eef45d9e287380aab8e852658092aa9dfa1"},
	{"nessie set 2 vector 2", "0000000000000000000000000000000000000000000000000000000000000000",
		"2000000000000000000000000000000000000000000000000000000000000000",
		"87b829fb7b0c16c408151d323fcb8b56ebc0573747d46c2b47bfd533ed3273c9"},
	{"nessie set 2 vector 3", "0000000000000000000000000000000000000000000000000000000000000000",
		"1000000000000000000000000000000000000000000000000000000000000000",
		"db462eec713d4cc89607dca35c4fe6e8d618c8bdacd3dd1c0a1b14e6ca8c23c6"},
	// 160-, 192- and 224-bit blocks exercise the other ShiftRows offsets.
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c",
		"3243f6a8885a308d313198a2e03707344a409382",
		"16e73aec921314c29df905432bc8968ab64b1f51"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe",
		"3243f6a8885a308d313198a2e03707344a409382",
		"579e930b36c1529aa3e86628bacfe146942882cf"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da5",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d",
		"725ae43b5f3161de806a7c93e0bca93c967ec1ae1b71e1cf"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d",
		"0ebacf199e3315c2e34b24fcc7c46ef4388aa475d66c194c"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d0082efa9",
		"b0a8f78f6b3c66213f792ffd2a61631f79331407a5e5c8d3793aceb1"},
	{"gladman", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d90",
		"3243f6a8885a308d313198a2e03707344a4093822299f31d0082efa9",
		"ef529598ecbce297811b49bbed2c33bbe1241d6e1a833dbe119569e8"},
	// 128-bit block.
	{"fips197 C.1", "000102030405060708090a0b0c0d0e0f",
		"00112233445566778899aabbccddeeff", "69c4e0d86a7b0430d8cdb78070b4c55a"},
	{"fips197 C.3", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"00112233445566778899aabbccddeeff", "8ea2b7ca516745bfeafc49904b496089"},
}

func TestKnownAnswers(t *testing.T) {
	for _, v := range kats {
		key, pt, want := unhex(t, v.key), unhex(t, v.plain), unhex(t, v.cipher)
		c, err := NewCipherBlockSize(key, len(pt))
		if err != nil {
			t.Fatalf("%s: %v", v.source, err)
		}
		got := make([]byte, len(pt))
		c.Encrypt(got, pt)
		if !bytes.Equal(got, want) {
			t.Errorf("%s key %d bits block %d bits: Encrypt = %x, want %x", v.source, 8*len(key), 8*len(pt), got, want)
		}
		c.Decrypt(got, want)
		if !bytes.Equal(got, pt) {
			t.Errorf("%s key %d bits block %d bits: Decrypt = %x, want %x", v.source, 8*len(key), 8*len(pt), got, pt)
		}
	}
}

// TestNESSIEIterated checks NESSIE set 1 vector 0 "Iterated 1000 times"
// (same source as above): encrypting the zero block 1000 times under key
// 80 00..00 gives the published value.
func TestNESSIEIterated(t *testing.T) {
	c, err := NewCipher(unhex(t, "8000000000000000000000000000000000000000000000000000000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, BlockSize)
	for range 1000 {
		c.Encrypt(b, b)
	}
	want := unhex(t, "16990d2f01f21a61678538bd10f1f231a1dcb8d4e73cddf6a33b5b5fa2368e14")
	if !bytes.Equal(b, want) {
		t.Fatalf("1000 iterations = %x, want %x", b, want)
	}
	for range 1000 {
		c.Decrypt(b, b)
	}
	if !bytes.Equal(b, make([]byte, BlockSize)) {
		t.Fatalf("1000 decryptions did not return to zero: %x", b)
	}
}

// TestAgainstCryptoAES cross-checks the Nb = 4 case against crypto/aes on
// random keys and blocks.
func TestAgainstCryptoAES(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, kl := range []int{16, 24, 32} {
		for range 200 {
			key := make([]byte, kl)
			pt := make([]byte, 16)
			for i := range key {
				key[i] = byte(r.Uint32())
			}
			for i := range pt {
				pt[i] = byte(r.Uint32())
			}
			ref, err := aes.NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewCipherBlockSize(key, 16)
			if err != nil {
				t.Fatal(err)
			}
			want, got := make([]byte, 16), make([]byte, 16)
			ref.Encrypt(want, pt)
			c.Encrypt(got, pt)
			if !bytes.Equal(got, want) {
				t.Fatalf("key %x pt %x: got %x want %x", key, pt, got, want)
			}
			c.Decrypt(got, want)
			if !bytes.Equal(got, pt) {
				t.Fatalf("key %x: decrypt got %x want %x", key, got, pt)
			}
		}
	}
}

func TestParameters(t *testing.T) {
	for _, tc := range []struct{ nb, nk, nr int }{
		{8, 8, 14}, {8, 4, 14}, {8, 6, 14}, {4, 4, 10}, {4, 6, 12}, {4, 8, 14}, {6, 4, 12},
	} {
		c, err := NewCipherBlockSize(make([]byte, 4*tc.nk), 4*tc.nb)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rounds() != tc.nr || c.BlockSize() != 4*tc.nb {
			t.Errorf("Nb=%d Nk=%d: Nr=%d BlockSize=%d", tc.nb, tc.nk, c.Rounds(), c.BlockSize())
		}
	}
	for _, n := range []int{0, 8, 15, 17, 33, 64} {
		if _, err := NewCipher(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("key of %d bytes: err = %v, want ErrKeySize", n, err)
		}
		if _, err := NewCipherBlockSize(make([]byte, 32), n); !errors.Is(err, ErrBlockSize) {
			t.Errorf("block of %d bytes: err = %v, want ErrBlockSize", n, err)
		}
	}
}

// TestCBC checks that crypto/cipher's CBC modes drive the 256-bit block.
func TestCBC(t *testing.T) {
	c, err := NewCipher(unhex(t, "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe"))
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, BlockSize)
	pt := bytes.Repeat([]byte("0123456789abcdef"), 8) // 4 blocks
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(c, iv).CryptBlocks(ct, pt)
	// The first block with a zero IV is plain ECB of the first block.
	first := make([]byte, BlockSize)
	c.Encrypt(first, pt[:BlockSize])
	if !bytes.Equal(first, ct[:BlockSize]) {
		t.Fatalf("CBC first block %x, ECB %x", ct[:BlockSize], first)
	}
	back := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c, iv).CryptBlocks(back, ct)
	if !bytes.Equal(back, pt) {
		t.Fatal("CBC round trip failed")
	}
}

func BenchmarkEncrypt256(b *testing.B) {
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, BlockSize)
	b.SetBytes(BlockSize)
	for b.Loop() {
		c.Encrypt(buf, buf)
	}
}

func BenchmarkDecrypt256(b *testing.B) {
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, BlockSize)
	b.SetBytes(BlockSize)
	for b.Loop() {
		c.Decrypt(buf, buf)
	}
}

// BenchmarkCryptoAES256 is crypto/aes with a 256-bit key (hardware AES
// where available), the peer to compare throughput with.
func BenchmarkCryptoAES256(b *testing.B) {
	c, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, aes.BlockSize)
	b.SetBytes(aes.BlockSize)
	for b.Loop() {
		c.Encrypt(buf, buf)
	}
}
