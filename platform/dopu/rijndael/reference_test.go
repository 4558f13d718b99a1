package rijndael

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// This file holds a second, step-by-step implementation of the cipher as the
// proposal describes it (the round transformation step by step, and its
// straightforward inverse). The table-driven Encrypt/Decrypt are checked against it
// for every block and key length, and it is itself checked against the
// published vectors.
//
// The state is kept as in the proposal's figures: column c holds input
// bytes 4c..4c+3, row r of column c is byte 4c+r.

func (c *Cipher) addRoundKey(s []byte, round int) {
	rk := c.w[round*c.nb : (round+1)*c.nb]
	for col, k := range rk {
		s[4*col] ^= byte(k >> 24)
		s[4*col+1] ^= byte(k >> 16)
		s[4*col+2] ^= byte(k >> 8)
		s[4*col+3] ^= byte(k)
	}
}

// shiftRows rotates row r left by C_r columns (inverse: right).
func (c *Cipher) shiftRows(s []byte, inverse bool) {
	nb := c.nb
	tmp := append([]byte(nil), s...)
	shift := shiftOffsets(nb)
	for r := 1; r < 4; r++ {
		off := shift[r]
		if inverse {
			off = nb - off
		}
		for col := 0; col < nb; col++ {
			s[4*col+r] = tmp[4*((col+off)%nb)+r]
		}
	}
}

func subBytes(s []byte, box *[256]byte) {
	for i, b := range s {
		s[i] = box[b]
	}
}

func mixColumns(s []byte) {
	for i := 0; i+4 <= len(s); i += 4 {
		a0, a1, a2, a3 := s[i], s[i+1], s[i+2], s[i+3]
		s[i] = gmul(a0, 2) ^ gmul(a1, 3) ^ a2 ^ a3
		s[i+1] = a0 ^ gmul(a1, 2) ^ gmul(a2, 3) ^ a3
		s[i+2] = a0 ^ a1 ^ gmul(a2, 2) ^ gmul(a3, 3)
		s[i+3] = gmul(a0, 3) ^ a1 ^ a2 ^ gmul(a3, 2)
	}
}

func (c *Cipher) encryptReference(dst, src []byte) {
	s := append([]byte(nil), src[:4*c.nb]...)
	c.addRoundKey(s, 0)
	for round := 1; round < c.nr; round++ {
		subBytes(s, &tables.sbox)
		c.shiftRows(s, false)
		mixColumns(s)
		c.addRoundKey(s, round)
	}
	subBytes(s, &tables.sbox)
	c.shiftRows(s, false)
	c.addRoundKey(s, c.nr)
	copy(dst, s)
}

func (c *Cipher) decryptReference(dst, src []byte) {
	s := append([]byte(nil), src[:4*c.nb]...)
	c.addRoundKey(s, c.nr)
	c.shiftRows(s, true)
	subBytes(s, &tables.invSbox)
	for round := c.nr - 1; round > 0; round-- {
		c.addRoundKey(s, round)
		invMixColumns(s)
		c.shiftRows(s, true)
		subBytes(s, &tables.invSbox)
	}
	c.addRoundKey(s, 0)
	copy(dst, s)
}

// TestTablesMatchReference checks the table-driven Encrypt/Decrypt against
// the reference cipher on random keys and blocks of every length, and the
// reference itself against the published vectors.
func TestTablesMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, bs := range []int{16, 20, 24, 28, 32} {
		for _, kl := range []int{16, 20, 24, 28, 32} {
			for range 50 {
				key := make([]byte, kl)
				pt := make([]byte, bs)
				for i := range key {
					key[i] = byte(r.Uint32())
				}
				for i := range pt {
					pt[i] = byte(r.Uint32())
				}
				c, err := NewCipherBlockSize(key, bs)
				if err != nil {
					t.Fatal(err)
				}
				fast, ref := make([]byte, bs), make([]byte, bs)
				c.Encrypt(fast, pt)
				c.encryptReference(ref, pt)
				if !bytes.Equal(fast, ref) {
					t.Fatalf("block %d key %d: Encrypt %x, reference %x", bs, kl, fast, ref)
				}
				c.Decrypt(fast, ref)
				c.decryptReference(ref, ref)
				if !bytes.Equal(fast, pt) || !bytes.Equal(ref, pt) {
					t.Fatalf("block %d key %d: Decrypt %x, reference %x, want %x", bs, kl, fast, ref, pt)
				}
			}
		}
	}
	for _, v := range kats {
		key, pt, want := unhex(t, v.key), unhex(t, v.plain), unhex(t, v.cipher)
		c, err := NewCipherBlockSize(key, len(pt))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(pt))
		c.encryptReference(got, pt)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: reference Encrypt = %x, want %x", v.source, got, want)
		}
		c.decryptReference(got, want)
		if !bytes.Equal(got, pt) {
			t.Errorf("%s: reference Decrypt = %x, want %x", v.source, got, pt)
		}
	}
}

// BenchmarkReferenceEncrypt256 is the step-by-step cipher, for comparison.
func BenchmarkReferenceEncrypt256(b *testing.B) {
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, BlockSize)
	b.SetBytes(BlockSize)
	for b.Loop() {
		c.encryptReference(buf, buf)
	}
}
