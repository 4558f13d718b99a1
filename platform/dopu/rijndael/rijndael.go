// Package rijndael implements the Rijndael block cipher as specified by
// J. Daemen and V. Rijmen, "AES Proposal: Rijndael" (document version 2,
// 1999), for every block length Nb and key length Nk of 4, 5, 6, 7 or 8
// 32-bit words (128 to 256 bits in steps of 32).
//
// AES (FIPS 197) is the Nb = 4 subset and is better served by crypto/aes.
// This package exists for the 256-bit block (Nb = 8) that the HealthVault
// .NET SDK used for drop-off/pick-up packages (RijndaelManaged with
// BlockSize = 256), which no standard Go package provides.
//
// The implementation is the proposal's table-lookup one (SubBytes, ShiftRows
// and MixColumns folded into four 256-entry word tables per direction, and
// the equivalent inverse cipher for decryption). The look-ups are indexed by
// secret data, so it is NOT constant time: a process that can observe cache
// timing on the same machine may learn key material. dicomgate uses it only
// where the HealthVault format requires it (DOPU packages and their blob
// chunks); use crypto/aes for anything else.
package rijndael

import (
	"crypto/cipher"
	"errors"
	"fmt"
)

// BlockSize is the block size in bytes of the cipher returned by NewCipher:
// 256 bits, Nb = 8.
const BlockSize = 32

// ErrKeySize is returned (wrapped) for a key that is not 16, 20, 24, 28 or
// 32 bytes long.
var ErrKeySize = errors.New("rijndael: invalid key size")

// ErrBlockSize is returned (wrapped) for a block size that is not 16, 20,
// 24, 28 or 32 bytes.
var ErrBlockSize = errors.New("rijndael: invalid block size")

// Cipher is one keyed instance of Rijndael. It implements cipher.Block and
// is safe for concurrent use (it is read-only once created).
type Cipher struct {
	nb, nk, nr int
	w          []uint32 // expanded key, Nb*(Nr+1) words, big-endian bytes
	dw         []uint32 // decryption key of the equivalent inverse cipher
	// fwd[r][c] / inv[r][c]: the input column that row r of output column c
	// is taken from by ShiftRows / InvShiftRows.
	fwd, inv [4][8]int
}

var _ cipher.Block = (*Cipher)(nil)

// NewCipher returns Rijndael with a 256-bit block keyed with key, which
// must be 16, 20, 24, 28 or 32 bytes long (the HealthVault use is 32).
func NewCipher(key []byte) (*Cipher, error) {
	return NewCipherBlockSize(key, BlockSize)
}

// NewCipherBlockSize returns Rijndael with a blockSize-byte block keyed with
// key. Both lengths must be 16, 20, 24, 28 or 32 bytes.
func NewCipherBlockSize(key []byte, blockSize int) (*Cipher, error) {
	if !validLen(len(key)) {
		return nil, fmt.Errorf("%w: %d bytes", ErrKeySize, len(key))
	}
	if !validLen(blockSize) {
		return nil, fmt.Errorf("%w: %d bytes", ErrBlockSize, blockSize)
	}
	c := &Cipher{nb: blockSize / 4, nk: len(key) / 4}
	c.nr = max(c.nb, c.nk) + 6
	shift := shiftOffsets(c.nb)
	for r := range 4 {
		for col := 0; col < c.nb; col++ {
			c.fwd[r][col] = (col + shift[r]) % c.nb
			c.inv[r][col] = (col + c.nb - shift[r]) % c.nb
		}
	}
	c.expandKey(key)
	return c, nil
}

func validLen(n int) bool { return n >= 16 && n <= 32 && n%4 == 0 }

// shiftOffsets gives C0..C3 of the proposal's ShiftRow offset table.
func shiftOffsets(nb int) [4]int {
	switch nb {
	case 7:
		return [4]int{0, 1, 2, 4}
	case 8:
		return [4]int{0, 1, 3, 4}
	default: // 4, 5, 6
		return [4]int{0, 1, 2, 3}
	}
}

// BlockSize returns the block size in bytes.
func (c *Cipher) BlockSize() int { return 4 * c.nb }

// Rounds returns the number of rounds Nr = max(Nb, Nk) + 6.
func (c *Cipher) Rounds() int { return c.nr }

// expandKey is the proposal's key expansion (with the extra SubByte step
// for Nk > 6).
func (c *Cipher) expandKey(key []byte) {
	n := c.nb * (c.nr + 1)
	w := make([]uint32, n)
	for i := 0; i < c.nk; i++ {
		w[i] = uint32(key[4*i])<<24 | uint32(key[4*i+1])<<16 | uint32(key[4*i+2])<<8 | uint32(key[4*i+3])
	}
	rcon := byte(1)
	for i := c.nk; i < n; i++ {
		t := w[i-1]
		switch {
		case i%c.nk == 0:
			t = subWord(t<<8|t>>24) ^ uint32(rcon)<<24
			rcon = xtime(rcon)
		case c.nk > 6 && i%c.nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-c.nk] ^ t
	}
	c.w = w
	// Equivalent inverse cipher: the round keys in reverse
	// order, InvMixColumn applied to all but the first and last.
	dw := make([]uint32, n)
	for round := 0; round <= c.nr; round++ {
		for col := 0; col < c.nb; col++ {
			k := w[(c.nr-round)*c.nb+col]
			if round > 0 && round < c.nr {
				var b [4]byte
				b[0], b[1], b[2], b[3] = byte(k>>24), byte(k>>16), byte(k>>8), byte(k)
				invMixColumns(b[:])
				k = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			}
			dw[round*c.nb+col] = k
		}
	}
	c.dw = dw
}

// Encrypt encrypts the first block of src into dst. dst and src may overlap
// entirely. As with crypto/aes, short buffers panic (a programming error).
// Each round is SubBytes, ShiftRows and MixColumns folded into four 1 KiB
// tables, then AddRoundKey.
func (c *Cipher) Encrypt(dst, src []byte) {
	c.check(dst, src)
	c.crypt(dst, src, c.w, &c.fwd, &tables.te, &tables.sbox)
}

// Decrypt decrypts the first block of src into dst with the equivalent
// inverse cipher and combined tables: the same round structure as Encrypt
// with the inverse tables, shifts and key schedule. dst and src may
// overlap entirely.
func (c *Cipher) Decrypt(dst, src []byte) {
	c.check(dst, src)
	c.crypt(dst, src, c.dw, &c.inv, &tables.td, &tables.invSbox)
}

// crypt runs the table-driven rounds with key schedule w, the row shifts
// shift, the round tables t and the final S-box sbox.
func (c *Cipher) crypt(dst, src []byte, w []uint32, shift *[4][8]int, t *[4][256]uint32, sbox *[256]byte) {
	nb := c.nb
	var s, n [8]uint32
	for i := 0; i < nb; i++ {
		s[i] = uint32(src[4*i])<<24 | uint32(src[4*i+1])<<16 | uint32(src[4*i+2])<<8 | uint32(src[4*i+3])
		s[i] ^= w[i]
	}
	f1, f2, f3 := &shift[1], &shift[2], &shift[3]
	k := nb
	for round := 1; round < c.nr; round++ {
		for i := 0; i < nb; i++ {
			n[i] = t[0][s[i]>>24] ^ t[1][s[f1[i]]>>16&0xff] ^ t[2][s[f2[i]]>>8&0xff] ^ t[3][s[f3[i]]&0xff] ^ w[k+i]
		}
		s = n
		k += nb
	}
	for i := 0; i < nb; i++ {
		v := uint32(sbox[s[i]>>24])<<24 | uint32(sbox[s[f1[i]]>>16&0xff])<<16 |
			uint32(sbox[s[f2[i]]>>8&0xff])<<8 | uint32(sbox[s[f3[i]]&0xff])
		v ^= w[k+i]
		dst[4*i], dst[4*i+1], dst[4*i+2], dst[4*i+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
}

func subWord(x uint32) uint32 {
	return uint32(tables.sbox[x>>24])<<24 | uint32(tables.sbox[x>>16&0xff])<<16 |
		uint32(tables.sbox[x>>8&0xff])<<8 | uint32(tables.sbox[x&0xff])
}

func invMixColumns(s []byte) {
	t := &tables
	for i := 0; i+4 <= len(s); i += 4 {
		a0, a1, a2, a3 := s[i], s[i+1], s[i+2], s[i+3]
		s[i] = t.mul14[a0] ^ t.mul11[a1] ^ t.mul13[a2] ^ t.mul9[a3]
		s[i+1] = t.mul9[a0] ^ t.mul14[a1] ^ t.mul11[a2] ^ t.mul13[a3]
		s[i+2] = t.mul13[a0] ^ t.mul9[a1] ^ t.mul14[a2] ^ t.mul11[a3]
		s[i+3] = t.mul11[a0] ^ t.mul13[a1] ^ t.mul9[a2] ^ t.mul14[a3]
	}
}

func (c *Cipher) check(dst, src []byte) {
	bs := 4 * c.nb
	if len(src) < bs {
		panic("rijndael: input not full block")
	}
	if len(dst) < bs {
		panic("rijndael: output not full block")
	}
}

// xtime multiplies by x (0x02) in GF(2^8) modulo m(x) = x^8+x^4+x^3+x+1.
func xtime(b byte) byte {
	if b&0x80 != 0 {
		return b<<1 ^ 0x1b
	}
	return b << 1
}

func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		a = xtime(a)
		b >>= 1
	}
	return p
}

type lookupTables struct {
	sbox, invSbox             [256]byte
	mul9, mul11, mul13, mul14 [256]byte
	// te[r][x]: column contribution of byte x in row r through SubBytes and
	// MixColumns; td likewise through InvSubBytes and InvMixColumns.
	te, td [4][256]uint32
}

// tables is computed once from the definitions (S-box = affine map of the
// multiplicative inverse in GF(2^8)) and never written afterwards.
var tables = buildTables()

func buildTables() lookupTables {
	var t lookupTables
	for i := 0; i < 256; i++ {
		b := byte(i)
		// Multiplicative inverse: b^254 (0 maps to 0).
		inv := byte(0)
		if b != 0 {
			inv = 1
			for range 254 {
				inv = gmul(inv, b)
			}
		}
		// Affine transformation: s = inv ^ rotl(inv,1..4) ^ 0x63.
		s := inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63
		t.sbox[b] = s
		t.invSbox[s] = b
		t.mul9[b] = gmul(b, 9)
		t.mul11[b] = gmul(b, 11)
		t.mul13[b] = gmul(b, 13)
		t.mul14[b] = gmul(b, 14)
	}
	for x := 0; x < 256; x++ {
		s, si := t.sbox[x], t.invSbox[x]
		e := uint32(gmul(s, 2))<<24 | uint32(s)<<16 | uint32(s)<<8 | uint32(gmul(s, 3))
		d := uint32(gmul(si, 14))<<24 | uint32(gmul(si, 9))<<16 | uint32(gmul(si, 13))<<8 | uint32(gmul(si, 11))
		for r := range 4 {
			t.te[r][x] = e>>(8*r) | e<<(32-8*r)
			t.td[r][x] = d>>(8*r) | d<<(32-8*r)
		}
	}
	return t
}

func rotl8(b byte, n uint) byte { return b<<n | b>>(8-n) }
