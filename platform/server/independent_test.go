package server_test

// An independent implementation of SPEC §6, written from the spec and not
// from platform/dopu: textbook Rijndael with a 256-bit block and key (FIPS
// 197's algorithm with Nb = 8, shift offsets 1, 3, 4 as in the Rijndael
// proposal), CBC, ISO 10126 padding, PBKDF2-HMAC-SHA1 and the HMAC-SHA256
// prefix. Packages it seals must be accepted by the platform, and packages
// (and blob chunks) the gateway-side code seals must open with it.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"dicomgate/platform/client"
	"dicomgate/platform/dopu"
	"dicomgate/platform/store"
)

const nb, nk, nr = 8, 8, 14

var sbox, invSbox [256]byte

func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

func init() {
	for x := 0; x < 256; x++ {
		// Multiplicative inverse as x^254, then the affine transform.
		inv := byte(0)
		if x != 0 {
			inv = 1
			for range 254 {
				inv = gmul(inv, byte(x))
			}
		}
		rotl := func(b byte, n uint) byte { return b<<n | b>>(8-n) }
		s := inv ^ rotl(inv, 1) ^ rotl(inv, 2) ^ rotl(inv, 3) ^ rotl(inv, 4) ^ 0x63
		sbox[x] = s
		invSbox[s] = byte(x)
	}
}

type textbookRijndael struct{ w [nb * (nr + 1)][4]byte }

func newTextbookRijndael(key []byte) *textbookRijndael {
	r := &textbookRijndael{}
	for i := range nk {
		copy(r.w[i][:], key[4*i:4*i+4])
	}
	rcon := byte(1)
	for i := nk; i < len(r.w); i++ {
		t := r.w[i-1]
		switch {
		case i%nk == 0:
			t = [4]byte{sbox[t[1]] ^ rcon, sbox[t[2]], sbox[t[3]], sbox[t[0]]}
			rcon = gmul(rcon, 2)
		case i%nk == 4:
			t = [4]byte{sbox[t[0]], sbox[t[1]], sbox[t[2]], sbox[t[3]]}
		}
		for j := range 4 {
			r.w[i][j] = r.w[i-nk][j] ^ t[j]
		}
	}
	return r
}

var shifts = [4]int{0, 1, 3, 4}

type state [4][nb]byte

func load(b []byte) (s state) {
	for c := range nb {
		for r := range 4 {
			s[r][c] = b[4*c+r]
		}
	}
	return s
}

func (s *state) store(b []byte) {
	for c := range nb {
		for r := range 4 {
			b[4*c+r] = s[r][c]
		}
	}
}

func (x *textbookRijndael) addRoundKey(s *state, round int) {
	for c := range nb {
		for r := range 4 {
			s[r][c] ^= x.w[round*nb+c][r]
		}
	}
}

func (x *textbookRijndael) encrypt(dst, src []byte) {
	s := load(src)
	x.addRoundKey(&s, 0)
	for round := 1; round <= nr; round++ {
		for r := range 4 {
			for c := range nb {
				s[r][c] = sbox[s[r][c]]
			}
		}
		var t state
		for r := range 4 {
			for c := range nb {
				t[r][c] = s[r][(c+shifts[r])%nb]
			}
		}
		s = t
		if round != nr {
			for c := range nb {
				a0, a1, a2, a3 := s[0][c], s[1][c], s[2][c], s[3][c]
				s[0][c] = gmul(a0, 2) ^ gmul(a1, 3) ^ a2 ^ a3
				s[1][c] = a0 ^ gmul(a1, 2) ^ gmul(a2, 3) ^ a3
				s[2][c] = a0 ^ a1 ^ gmul(a2, 2) ^ gmul(a3, 3)
				s[3][c] = gmul(a0, 3) ^ a1 ^ a2 ^ gmul(a3, 2)
			}
		}
		x.addRoundKey(&s, round)
	}
	s.store(dst)
}

func (x *textbookRijndael) decrypt(dst, src []byte) {
	s := load(src)
	x.addRoundKey(&s, nr)
	for round := nr - 1; round >= 0; round-- {
		var t state
		for r := range 4 {
			for c := range nb {
				t[r][(c+shifts[r])%nb] = invSbox[s[r][c]]
			}
		}
		s = t
		x.addRoundKey(&s, round)
		if round != 0 {
			for c := range nb {
				a0, a1, a2, a3 := s[0][c], s[1][c], s[2][c], s[3][c]
				s[0][c] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9)
				s[1][c] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13)
				s[2][c] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11)
				s[3][c] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14)
			}
		}
	}
	s.store(dst)
}

// spec6Key derives key and IV: PBKDF2-HMAC-SHA1(lower(answer), salt, 20000, 64).
func spec6Key(t *testing.T, answer, salt string) (*textbookRijndael, []byte) {
	t.Helper()
	dk, err := pbkdf2.Key(sha1.New, strings.ToLower(answer), []byte(salt), 20000, 64)
	if err != nil {
		t.Fatal(err)
	}
	return newTextbookRijndael(dk[:32]), dk[32:]
}

func cbcEncrypt(x *textbookRijndael, iv, plain []byte) []byte {
	n := 32 - len(plain)%32
	pad := make([]byte, n)
	rand.Read(pad[:n-1])
	pad[n-1] = byte(n)
	buf := append(append([]byte(nil), plain...), pad...)
	prev := iv
	for i := 0; i < len(buf); i += 32 {
		for j := range 32 {
			buf[i+j] ^= prev[j]
		}
		x.encrypt(buf[i:i+32], buf[i:i+32])
		prev = buf[i : i+32]
	}
	return buf
}

func cbcDecrypt(x *textbookRijndael, iv, ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%32 != 0 {
		return nil, fmt.Errorf("ciphertext of %d bytes", len(ct))
	}
	out := make([]byte, len(ct))
	prev := iv
	for i := 0; i < len(ct); i += 32 {
		x.decrypt(out[i:i+32], ct[i:i+32])
		for j := range 32 {
			out[i+j] ^= prev[j]
		}
		prev = ct[i : i+32]
	}
	n := int(out[len(out)-1])
	if n < 1 || n > 32 {
		return nil, fmt.Errorf("padding byte %d", n)
	}
	return out[:len(out)-n], nil
}

func TestIndependentSealIsAccepted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	things := marshalThings(t, noteThing("sealed independently"), noteThing("second"))
	salt := "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	x, iv := spec6Key(t, answer, salt)
	mac := hmac.New(sha256.New, []byte(salt))
	mac.Write(things)
	ct := cbcEncrypt(x, iv, append(mac.Sum(nil), things...))
	pkg := &dopu.Package{Algorithm: dopu.HMACSHA256AES256, Salt: salt, IterationCount: 20000, KeyLength: 256, Ciphertext: ct}
	code, err := e.client.CreateConnectPackage(ctx, client.ConnectPackage{FriendlyName: "Ind", Question: "Pet?", ExternalID: "ind", Package: pkg})
	if err != nil {
		t.Fatal(err)
	}
	rec := e.newRecord("ivy", false)
	if err := e.srv.PickUp(ctx, code, answer, e.personOf(rec), rec); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.QueryThings(ctx, store.ThingQuery{RecordID: rec, TypeIDs: []string{noteType}})
	if err != nil || len(got) != 2 {
		t.Fatalf("record has %d things (%v)", len(got), err)
	}
}

func TestGatewaySealOpensIndependently(t *testing.T) {
	things := marshalThings(t, noteThing("sealed by the gateway side"))
	key, err := dopu.NewKey(answer, dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := key.Seal(things, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, iv := spec6Key(t, answer, pkg.Salt)
	plain, err := cbcDecrypt(x, iv, pkg.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(pkg.Salt))
	mac.Write(plain[32:])
	if !hmac.Equal(mac.Sum(nil), plain[:32]) || !bytes.Equal(plain[32:], things) {
		t.Fatal("package does not open with the independent implementation")
	}
	// Streamed blob chunks: each chunk alone, same key and IV.
	data := pattern(3*testChunk+5, 9)
	enc, err := key.NewChunkEncrypter(bytes.NewReader(data), testChunk, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		ch, err := enc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := cbcDecrypt(x, iv, ch.Ciphertext)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("blob chunks do not decrypt with the independent implementation")
	}
}
