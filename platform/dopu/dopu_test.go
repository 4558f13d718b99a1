package dopu_test

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"dicomgate/platform/dopu"
	"dicomgate/platform/dopu/rijndael"
)

// detRand is a deterministic randomness source so failures reproduce.
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

const sampleThings = `<thing><type-id>3d34d87e-7fc1-4153-800f-f56592cb0d17</type-id><data-xml><weight><when><date><y>2006</y><m>12</m><d>22</d></date></when><value><kg>125</kg><display units="lb" units-code="lb">275.5625</display></value></weight></data-xml></thing>`

// handPBKDF2SHA1 is RFC 8018 section 5.2 written out for the tests, so that
// Seal's key derivation is checked by a second implementation.
func handPBKDF2SHA1(password, salt []byte, iter, dkLen int) []byte {
	var out []byte
	for i := uint32(1); len(out) < dkLen; i++ {
		m := hmac.New(sha1.New, password)
		m.Write(salt)
		m.Write([]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		u := m.Sum(nil)
		t := append([]byte(nil), u...)
		for j := 1; j < iter; j++ {
			m := hmac.New(sha1.New, password)
			m.Write(u)
			u = m.Sum(nil)
			for k := range t {
				t[k] ^= u[k]
			}
		}
		out = append(out, t...)
	}
	return out[:dkLen]
}

// RFC 6070 section 2 PBKDF2-HMAC-SHA1 test vectors (also in
// golang.org/x/crypto/pbkdf2's pbkdf2_test.go). The 16777216-iteration
// vector is left out: it takes too long for a unit test.
var rfc6070 = []struct {
	password, salt string
	iter, dkLen    int
	want           string
}{
	{"password", "salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
	{"password", "salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
	{"password", "salt", 4096, 20, "4b007901b765489abead49d926f721d065a429c1"},
	{"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 25, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
	{"pass\x00word", "sa\x00lt", 4096, 16, "56fa6aa75548099dcc37d7f03425e0c3"},
}

func TestPBKDF2RFC6070(t *testing.T) {
	for _, v := range rfc6070 {
		want := unhex(t, v.want)
		got, err := pbkdf2.Key(sha1.New, v.password, []byte(v.salt), v.iter, v.dkLen)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("crypto/pbkdf2 %q/%q/%d = %x, want %x", v.password, v.salt, v.iter, got, want)
		}
		if got := handPBKDF2SHA1([]byte(v.password), []byte(v.salt), v.iter, v.dkLen); !bytes.Equal(got, want) {
			t.Errorf("test PBKDF2 %q/%q/%d = %x, want %x", v.password, v.salt, v.iter, got, want)
		}
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestSealParameters(t *testing.T) {
	for _, tc := range []struct {
		alg     dopu.Algorithm
		keyBits int
		block   int
	}{{dopu.HMACSHA256AES256, 256, 32}, {dopu.HMACSHA13DES, 192, 8}} {
		p, err := dopu.Seal("Correct Horse", []byte(sampleThings), tc.alg, detRand(1))
		if err != nil {
			t.Fatal(err)
		}
		if p.Algorithm != tc.alg || p.KeyLength != tc.keyBits || p.IterationCount != 20000 {
			t.Errorf("%s: parameters %+v", tc.alg, p)
		}
		if !guidRE.MatchString(p.Salt) {
			t.Errorf("%s: salt %q is not a lowercase GUID", tc.alg, p.Salt)
		}
		macLen := map[dopu.Algorithm]int{dopu.HMACSHA256AES256: 32, dopu.HMACSHA13DES: 20}[tc.alg]
		plainLen := macLen + len(sampleThings)
		if want := plainLen - plainLen%tc.block + tc.block; len(p.Ciphertext) != want {
			t.Errorf("%s: ciphertext %d bytes, want %d", tc.alg, len(p.Ciphertext), want)
		}
	}
}

// independentOpen decrypts a sealed package without the package's code:
// hand PBKDF2, block-by-block CBC, ISO 10126 unpadding, HMAC check.
func independentOpen(t *testing.T, answer string, p *dopu.Package) []byte {
	t.Helper()
	var (
		keyLen, ivLen int
		block         cipher.Block
		newMAC        func() hash.Hash
		err           error
	)
	switch p.Algorithm {
	case dopu.HMACSHA256AES256:
		keyLen, ivLen, newMAC = 32, 32, sha256.New
	case dopu.HMACSHA13DES:
		keyLen, ivLen, newMAC = 24, 8, sha1.New
	}
	dk := handPBKDF2SHA1([]byte(strings.ToLower(answer)), []byte(p.Salt), p.IterationCount, keyLen+ivLen)
	if p.Algorithm == dopu.HMACSHA256AES256 {
		block, err = rijndael.NewCipher(dk[:keyLen])
	} else {
		block, err = des.NewTripleDESCipher(dk[:keyLen])
	}
	if err != nil {
		t.Fatal(err)
	}
	bs := block.BlockSize()
	prev := dk[keyLen:]
	ct := p.Ciphertext
	if len(ct)%bs != 0 || len(ct) == 0 {
		t.Fatalf("ciphertext length %d", len(ct))
	}
	plain := make([]byte, len(ct))
	for i := 0; i < len(ct); i += bs {
		block.Decrypt(plain[i:i+bs], ct[i:i+bs])
		for j := 0; j < bs; j++ {
			plain[i+j] ^= prev[j]
		}
		prev = ct[i : i+bs]
	}
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > bs {
		t.Fatalf("padding byte %d", pad)
	}
	plain = plain[:len(plain)-pad]
	m := hmac.New(newMAC, []byte(p.Salt))
	macLen := m.Size()
	m.Write(plain[macLen:])
	if !hmac.Equal(m.Sum(nil), plain[:macLen]) {
		t.Fatal("independent HMAC check failed")
	}
	return plain[macLen:]
}

func TestSealIndependentlyDecrypted(t *testing.T) {
	for _, alg := range []dopu.Algorithm{dopu.HMACSHA256AES256, dopu.HMACSHA13DES} {
		p, err := dopu.Seal("Mother's Maiden", []byte(sampleThings), alg, detRand(2))
		if err != nil {
			t.Fatal(err)
		}
		if got := independentOpen(t, "Mother's Maiden", p); string(got) != sampleThings {
			t.Errorf("%s: independent decrypt = %q", alg, got)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	r := detRand(3)
	for _, alg := range []dopu.Algorithm{dopu.HMACSHA256AES256, dopu.HMACSHA13DES} {
		// One key, many sizes: PBKDF2 is slow on purpose.
		k, err := dopu.NewKey("secret answer", alg, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 7, 8, 9, 11, 12, 13, 31, 32, 33, 64, 1000, 100000} {
			data := make([]byte, n)
			r.Read(data)
			p, err := k.Seal(data, r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.Open(p)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s %d bytes: Open err %v, equal %v", alg, n, err, bytes.Equal(got, data))
			}
		}
		p, err := k.Seal([]byte(sampleThings), r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dopu.Open("secret answer", p)
		if err != nil || string(got) != sampleThings {
			t.Fatalf("%s: Open = %q, %v", alg, got, err)
		}
	}
}

func TestAnswerRules(t *testing.T) {
	p, err := dopu.Seal("Blue Moon Rising", []byte(sampleThings), dopu.HMACSHA256AES256, detRand(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		answer string
		ok     bool
	}{
		{"Blue Moon Rising", true},
		{"blue moon rising", true},
		{"BLUE MOON RISING", true},
		{"bLuE mOoN rIsInG", true},
		{" blue moon rising", false}, // not trimmed
		{"blue moon rising ", false},
		{"blue  moon rising", false},
		{"bluemoonrising", false},
		{"blue moon risin", false},
		{"", false},
	} {
		got, err := dopu.Open(tc.answer, p)
		switch {
		case tc.ok && (err != nil || string(got) != sampleThings):
			t.Errorf("Open(%q) = %v, want success", tc.answer, err)
		case !tc.ok && !errors.Is(err, dopu.ErrWrongAnswer):
			t.Errorf("Open(%q) err = %v, want ErrWrongAnswer", tc.answer, err)
		case !tc.ok && strings.Contains(err.Error(), tc.answer) && tc.answer != "":
			t.Errorf("error %q reveals the answer", err)
		}
	}
}

func TestAnswerTooShort(t *testing.T) {
	for _, tc := range []struct {
		answer string
		short  bool
	}{
		{"", true},
		{"abcde", true},
		{"ééééé", true}, // 5 characters, 10 UTF-8 bytes
		{"abcdef", false},
		{"ÉÉÉÉÉÉ", false},
		{"😀😀😀", false},    // 6 UTF-16 code units, as .NET String.Length counts
		{"      ", false}, // whitespace is not trimmed
	} {
		_, err := dopu.Seal(tc.answer, []byte(sampleThings), dopu.HMACSHA256AES256, detRand(5))
		if got := errors.Is(err, dopu.ErrAnswerTooShort); got != tc.short {
			t.Errorf("Seal(%q) err = %v, want too-short %v", tc.answer, err, tc.short)
		}
	}
}

func TestNormalizeAnswer(t *testing.T) {
	for in, want := range map[string]string{
		"ABC def":    "abc def",
		"ÀÉÎÕÜ":      "àéîõü",
		"ΣΟΦΙΑ":      "σοφια",
		"МОСКВА":     "москва",
		" Tab\tEnd ": " tab\tend ",
		"𐐀":          "𐐀", // supplementary plane: .NET lowers UTF-16 units, so unchanged
	} {
		if got := dopu.NormalizeAnswer(in); got != want {
			t.Errorf("NormalizeAnswer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTampered(t *testing.T) {
	const answer = "tamper proof"
	k, err := dopu.NewKey(answer, dopu.HMACSHA256AES256, detRand(6))
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Seal([]byte(sampleThings), detRand(7))
	if err != nil {
		t.Fatal(err)
	}
	orig := p.Ciphertext
	variant := func(f func(c []byte) []byte) *dopu.Package {
		q := *p
		q.Ciphertext = f(append([]byte(nil), orig...))
		return &q
	}
	cases := map[string]*dopu.Package{
		"flip first byte (HMAC)": variant(func(c []byte) []byte { c[0] ^= 1; return c }),
		"flip middle byte":       variant(func(c []byte) []byte { c[len(c)/2] ^= 0x80; return c }),
		"flip last byte":         variant(func(c []byte) []byte { c[len(c)-1] ^= 1; return c }),
		"drop last block":        variant(func(c []byte) []byte { return c[:len(c)-32] }),
		"append a block":         variant(func(c []byte) []byte { return append(c, c[:32]...) }),
		"not block aligned":      variant(func(c []byte) []byte { return c[:len(c)-1] }),
		"empty":                  variant(func(c []byte) []byte { return nil }),
		"one block":              variant(func(c []byte) []byte { return c[:32] }),
	}
	// A ciphertext with correct padding but a wrong HMAC, and ones with a
	// correct HMAC but an invalid padding length byte, built by hand.
	dk := handPBKDF2SHA1([]byte(answer), []byte(p.Salt), p.IterationCount, 64)
	block, err := rijndael.NewCipher(dk[:32])
	if err != nil {
		t.Fatal(err)
	}
	build := func(plain []byte) *dopu.Package {
		q := *p
		q.Ciphertext = make([]byte, len(plain))
		cipher.NewCBCEncrypter(block, dk[32:]).CryptBlocks(q.Ciphertext, plain)
		return &q
	}
	mac := hmac.New(sha256.New, []byte(p.Salt))
	mac.Write([]byte(sampleThings))
	good := append(mac.Sum(nil), sampleThings...)
	padded := func(body []byte, last byte) []byte {
		n := 32 - len(body)%32
		out := append(append([]byte(nil), body...), make([]byte, n)...)
		out[len(out)-1] = last
		return out
	}
	control := padded(good, byte(32-len(good)%32))
	if got, err := k.Open(build(control)); err != nil || string(got) != sampleThings {
		t.Fatalf("hand-built control package does not open: %v", err)
	}
	badMAC := append([]byte(nil), good...)
	badMAC[5] ^= 1
	cases["wrong HMAC, good padding"] = build(padded(badMAC, byte(32-len(good)%32)))
	cases["padding byte 0"] = build(padded(good, 0))
	cases["padding byte 33"] = build(padded(good, 33))
	cases["padding byte 255"] = build(padded(good, 255))
	for name, q := range cases {
		got, err := k.Open(q)
		if !errors.Is(err, dopu.ErrWrongAnswer) {
			t.Errorf("%s: Open = %q, %v; want ErrWrongAnswer", name, got, err)
		}
	}
}

func TestPackageParameterChecks(t *testing.T) {
	p, err := dopu.Seal("parameters", []byte(sampleThings), dopu.HMACSHA256AES256, detRand(8))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mut  func(q *dopu.Package)
		want error
	}{
		"algorithm none":    {func(q *dopu.Package) { q.Algorithm = dopu.None }, dopu.ErrUnsupportedAlgorithm},
		"algorithm unknown": {func(q *dopu.Package) { q.Algorithm = "rot13" }, dopu.ErrUnsupportedAlgorithm},
		"key length 128":    {func(q *dopu.Package) { q.KeyLength = 128 }, dopu.ErrUnsupportedAlgorithm},
		"iterations 0":      {func(q *dopu.Package) { q.IterationCount = 0 }, dopu.ErrMalformedPackage},
		"iterations huge":   {func(q *dopu.Package) { q.IterationCount = dopu.MaxIterations + 1 }, dopu.ErrMalformedPackage},
		"empty salt":        {func(q *dopu.Package) { q.Salt = "" }, dopu.ErrMalformedPackage},
		"long salt":         {func(q *dopu.Package) { q.Salt = strings.Repeat("s", dopu.MaxSaltLength+1) }, dopu.ErrMalformedPackage},
	} {
		q := *p
		tc.mut(&q)
		_, err := dopu.Open("parameters", &q)
		var fe *dopu.FormatError
		if !errors.Is(err, tc.want) || !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want %v as *FormatError", name, err, tc.want)
		}
	}
	if _, err := dopu.Open("parameters", nil); !errors.Is(err, dopu.ErrMalformedPackage) {
		t.Errorf("nil package: %v", err)
	}
	if _, err := dopu.Seal("parameters", nil, dopu.HMACSHA256AES256, nil); !errors.Is(err, dopu.ErrEmptyContents) {
		t.Errorf("empty contents: %v", err)
	}
	if _, err := dopu.Seal("parameters", []byte(sampleThings), dopu.None, nil); !errors.Is(err, dopu.ErrUnsupportedAlgorithm) {
		t.Errorf("seal with none: %v", err)
	}
	// 3DES packages with the schema's 168-bit key-length still open.
	p3, err := dopu.Seal("parameters", []byte(sampleThings), dopu.HMACSHA13DES, detRand(9))
	if err != nil {
		t.Fatal(err)
	}
	p3.KeyLength = 168
	if got, err := dopu.Open("parameters", p3); err != nil || string(got) != sampleThings {
		t.Errorf("3DES with key-length 168: %v", err)
	}
}

// TestSealUsesCryptoRandByDefault: a nil rand works and gives distinct salts.
func TestSealUsesCryptoRandByDefault(t *testing.T) {
	a, err := dopu.NewKey("default rand", dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dopu.NewKey("default rand", dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Salt() == b.Salt() || !guidRE.MatchString(a.Salt()) {
		t.Errorf("salts %q %q", a.Salt(), b.Salt())
	}
}
