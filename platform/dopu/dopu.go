// Package dopu implements the encryption of HealthVault drop-off/pick-up
// (DOPU) packages: the Password Protected Package thing (type
// c9287326-bb43-4194-858c-8b60768f000f, schema password-protected-package.xsd)
// and the per-chunk encryption of streamed blobs that belong to a package.
//
// The format is the one the HealthVault .NET SDK produced (ConnectPackage,
// ConnectPackageCreationParameters, ConnectPackageHelper, BlobStream in
// Microsoft.Health), summarised in dicomgate's SPEC §6:
//
//   - salt: a random GUID formatted "D" (lowercase, hyphens); the XML carries
//     the string and the salt bytes are its UTF-8 bytes;
//   - the secret answer is lower-cased (see NormalizeAnswer) and not trimmed;
//     the SDK refused answers shorter than 6 characters;
//   - PBKDF2 (RFC 8018) with HMAC-SHA1 (.NET Rfc2898DeriveBytes) over the UTF-8
//     answer and the salt bytes, 20000 iterations by default;
//   - hmac-sha256-aes256: 64 derived bytes, key = 0-31, IV = 32-63; Rijndael
//     with a 256-bit block and key (not AES), CBC, ISO 10126 padding; the
//     plaintext is HMAC-SHA256(key = salt bytes, data) followed by data;
//   - hmac-sha1-3des (legacy): 32 derived bytes, key = 0-23, IV = 24-31;
//     TripleDES (EDE, 64-bit block), CBC, ISO 10126 padding; the plaintext is
//     HMAC-SHA1(key = salt bytes, data) followed by data. The public SDK
//     never produced this variant (its ConnectPackage only seals with
//     Rijndael; it documents TripleDES as "192-bit key, 64-bit block, 8-byte
//     IV" derived with Rfc2898DeriveBytes), so the key/IV split — the
//     continuation of the same PBKDF2 output, as Rfc2898DeriveBytes.GetBytes
//     twice gives — and HMAC-SHA1 for the integrity prefix are dicomgate's
//     reading of the algorithm name, by analogy with hmac-sha256-aes256.
//
// data is the UTF-8 of the concatenated <thing> elements with no wrapper.
//
// Open answers ErrWrongAnswer both for a bad MAC and for bad padding so that
// a caller (and through it a patient at the pick-up page) cannot tell them
// apart; the MAC is compared in constant time. The answer never appears in an
// error.
//
// Usage. The gateway derives one Key per package with NewKey (PBKDF2 is slow
// on purpose), encrypts the package's streamed blobs with
// Key.NewChunkEncrypter, then seals the things with Key.Seal (Seal does both
// steps for a package without streamed blobs). The platform, when the
// patient answers, calls DeriveKey on the stored package, Key.Open for the
// things and Key.NewChunkDecrypter for each streamed blob. The Rijndael
// implementation is table driven and not constant time (see package
// rijndael); the MAC check is.
package dopu

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"

	"dicomgate/platform/dopu/rijndael"
)

// Algorithm names a package encryption algorithm, spelt as in the
// algorithm-name element of password-protected-package.xsd.
type Algorithm string

// The algorithms of password-protected-package.xsd.
const (
	// HMACSHA256AES256 is the SDK's (and dicomgate's) algorithm: Rijndael with
	// a 256-bit block and key, HMAC-SHA256 integrity.
	HMACSHA256AES256 Algorithm = "hmac-sha256-aes256"
	// HMACSHA13DES is the legacy TripleDES algorithm with HMAC-SHA1 integrity.
	HMACSHA13DES Algorithm = "hmac-sha1-3des"
	// None is in the schema but carries no protection; Seal and Open refuse it.
	None Algorithm = "none"
)

// Thing type and blob constants of the Password Protected Package.
const (
	TypeID    = "c9287326-bb43-4194-858c-8b60768f000f"
	Namespace = "urn:com.microsoft.wc.thing.password.protected.package"
	// BlobContentType and BlobName describe the inline blob holding the
	// ciphertext, as the SDK wrote it.
	BlobContentType = "application/octet-stream"
	BlobName        = ""
)

// Limits.
const (
	// DefaultIterations is the SDK's PBKDF2 iteration count.
	DefaultIterations = 20000
	// MaxIterations bounds the iteration count accepted from a package so
	// that a hostile package cannot make pick-up burn CPU (10x the default).
	MaxIterations = 200000
	// MinAnswerLength is the SDK's minimum answer length, counted like .NET
	// String.Length in UTF-16 code units.
	MinAnswerLength = 6
	// MaxSaltLength bounds the salt string (a GUID is 36 characters).
	MaxSaltLength = 1024
)

// Errors. Check with errors.Is.
var (
	// ErrAnswerTooShort: the answer has fewer than MinAnswerLength characters.
	ErrAnswerTooShort = errors.New("dopu: secret answer shorter than 6 characters")
	// ErrWrongAnswer: the package does not open with this answer (bad MAC or
	// bad padding; deliberately not distinguished).
	ErrWrongAnswer = errors.New("dopu: wrong answer or corrupt package")
	// ErrUnsupportedAlgorithm: the algorithm or its key length is not one
	// this package implements.
	ErrUnsupportedAlgorithm = errors.New("dopu: unsupported encryption algorithm")
	// ErrEmptyContents: there is nothing to seal.
	ErrEmptyContents = errors.New("dopu: empty package contents")
	// ErrMalformedPackage: the package data-xml or parameters are invalid.
	// Errors of type *FormatError wrap it.
	ErrMalformedPackage = errors.New("dopu: malformed password protected package")
)

// params gives the fixed parameters of each supported algorithm.
type params struct {
	keyLen, ivLen int // bytes
	keyBits       int // key-length written to the XML
	newBlock      func(key []byte) (cipher.Block, error)
	newMAC        func() hash.Hash
}

func algParams(a Algorithm) (params, error) {
	switch a {
	case HMACSHA256AES256:
		return params{keyLen: 32, ivLen: 32, keyBits: 256,
			newBlock: func(k []byte) (cipher.Block, error) { return rijndael.NewCipher(k) },
			newMAC:   sha256.New}, nil
	case HMACSHA13DES:
		return params{keyLen: 24, ivLen: 8, keyBits: 192,
			newBlock: des.NewTripleDESCipher,
			newMAC:   sha1.New}, nil
	}
	return params{}, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, string(a))
}

// keyLengthOK reports whether the key-length of a package matches its
// algorithm. For 3DES the docs say 192 and the schema comment says 168
// (effective strength); both are accepted.
func keyLengthOK(a Algorithm, bits int) bool {
	switch a {
	case HMACSHA256AES256:
		return bits == 256
	case HMACSHA13DES:
		return bits == 192 || bits == 168
	}
	return false
}

// NormalizeAnswer lower-cases a secret answer the way the SDK's
// String.ToLowerInvariant did: every UTF-16 code unit on its own through the
// Unicode simple lowercase mapping. Runes outside the Basic Multilingual
// Plane (surrogate pairs in UTF-16) are left as they are, as .NET Framework
// did; whitespace is kept. Known residual difference: .NET's invariant
// culture may leave U+0130 (capital I with dot) unchanged where Unicode maps
// it to "i"; dicomgate follows Unicode.
func NormalizeAnswer(answer string) string {
	return strings.Map(func(r rune) rune {
		if r > 0xFFFF {
			return r
		}
		return unicode.ToLower(r)
	}, answer)
}

// answerLength counts like .NET String.Length (UTF-16 code units).
func answerLength(answer string) int {
	n := 0
	for _, r := range answer { // invalid UTF-8 decodes as U+FFFD: one unit
		n += utf16.RuneLen(r)
	}
	return n
}

// Key is the key material of one package: derived once (PBKDF2 is
// deliberately slow) and then used for the package body and for every
// streamed blob chunk of the package. A Key is safe for concurrent use.
type Key struct {
	alg        Algorithm
	salt       string
	iterations int
	block      cipher.Block
	iv         []byte
	newMAC     func() hash.Hash
	keyBits    int
}

// NewKey draws a fresh salt (a random GUID) from rand (crypto/rand when nil)
// and derives the key for answer with alg and DefaultIterations. The
// gateway calls it once per package, encrypts the package's streamed blobs
// with NewChunkEncrypter and finally seals the things with Seal.
func NewKey(answer string, alg Algorithm, rand io.Reader) (*Key, error) {
	if answerLength(answer) < MinAnswerLength {
		return nil, ErrAnswerTooShort
	}
	if _, err := algParams(alg); err != nil {
		return nil, err
	}
	salt, err := newGUID(rand)
	if err != nil {
		return nil, err
	}
	return deriveKey(answer, alg, salt, DefaultIterations)
}

// DeriveKey derives the key of an existing package p from answer. It checks
// p's parameters (algorithm, key length, salt, iteration count) but cannot
// tell whether the answer is right: Open and the chunk decrypter do. The
// platform calls it once per pick-up attempt.
func DeriveKey(answer string, p *Package) (*Key, error) {
	if p == nil {
		return nil, &FormatError{Field: "package", Reason: "missing"}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return deriveKey(answer, p.Algorithm, p.Salt, p.IterationCount)
}

func deriveKey(answer string, alg Algorithm, salt string, iterations int) (*Key, error) {
	pr, err := algParams(alg)
	if err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(sha1.New, NormalizeAnswer(answer), []byte(salt), iterations, pr.keyLen+pr.ivLen)
	if err != nil {
		return nil, fmt.Errorf("dopu: key derivation: %w", err)
	}
	block, err := pr.newBlock(dk[:pr.keyLen])
	if err != nil {
		return nil, fmt.Errorf("dopu: cipher: %w", err)
	}
	return &Key{
		alg: alg, salt: salt, iterations: iterations,
		block: block, iv: dk[pr.keyLen:], newMAC: pr.newMAC, keyBits: pr.keyBits,
	}, nil
}

// Algorithm returns the key's algorithm.
func (k *Key) Algorithm() Algorithm { return k.alg }

// Salt returns the salt string (as written to the package XML).
func (k *Key) Salt() string { return k.salt }

// Seal encrypts the UTF-8 concatenated <thing> elements with k and returns
// the package. rand (crypto/rand when nil) supplies the ISO 10126 padding.
func (k *Key) Seal(things []byte, rand io.Reader) (*Package, error) {
	if len(things) == 0 {
		return nil, ErrEmptyContents
	}
	mac := hmac.New(k.newMAC, []byte(k.salt))
	mac.Write(things)
	sum := mac.Sum(nil)
	plain := make([]byte, 0, len(sum)+len(things)+k.block.BlockSize())
	plain = append(plain, sum...)
	plain = append(plain, things...)
	ct, err := k.encryptCBC(plain, plain, rand) // in place: plain has room for the padding
	if err != nil {
		return nil, err
	}
	return &Package{
		Algorithm:      k.alg,
		Salt:           k.salt,
		IterationCount: k.iterations,
		KeyLength:      k.keyBits,
		Ciphertext:     ct,
	}, nil
}

// encryptCBC appends the ISO 10126 padded encryption of plain to dst[:0]
// using a fresh CBC encrypter from the package IV. It serves the package
// body and each blob chunk, exactly as the SDK's CreateEncryptor +
// TransformFinalBlock did.
func (k *Key) encryptCBC(dst, plain []byte, rand io.Reader) ([]byte, error) {
	padded, err := padISO10126(dst, plain, k.block.BlockSize(), rand)
	if err != nil {
		return nil, err
	}
	cipher.NewCBCEncrypter(k.block, k.iv).CryptBlocks(padded, padded)
	return padded, nil
}

// decryptCBC decrypts ct into a new buffer and strips the ISO 10126 padding.
// ok is false for a length that is not a positive multiple of the block or a
// padding length byte outside 1..block.
func (k *Key) decryptCBC(dst, ct []byte) (plain []byte, ok bool) {
	bs := k.block.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, false
	}
	buf := append(dst[:0], ct...)
	cipher.NewCBCDecrypter(k.block, k.iv).CryptBlocks(buf, buf)
	n := int(buf[len(buf)-1])
	if n < 1 || n > bs {
		return nil, false
	}
	return buf[:len(buf)-n], true
}

// Open decrypts p with k and verifies its MAC; it returns the concatenated
// <thing> elements. Any failure to authenticate is ErrWrongAnswer.
func (k *Key) Open(p *Package) ([]byte, error) {
	if p == nil {
		return nil, &FormatError{Field: "package", Reason: "missing"}
	}
	if p.Algorithm != k.alg || p.Salt != k.salt || p.IterationCount != k.iterations {
		return nil, &FormatError{Field: "parameters", Reason: "package does not match the key"}
	}
	plain, ok := k.decryptCBC(nil, p.Ciphertext)
	macLen := k.newMAC().Size()
	if !ok || len(plain) < macLen {
		return nil, ErrWrongAnswer
	}
	mac := hmac.New(k.newMAC, []byte(k.salt))
	mac.Write(plain[macLen:])
	if subtle.ConstantTimeCompare(mac.Sum(nil), plain[:macLen]) != 1 {
		return nil, ErrWrongAnswer
	}
	return plain[macLen:], nil
}

// Seal derives a key for answer (see NewKey) and seals things with it. Use
// NewKey and Key.Seal instead when the package has streamed blobs, which
// must be encrypted with the same key.
func Seal(answer string, plaintextThings []byte, alg Algorithm, rand io.Reader) (*Package, error) {
	k, err := NewKey(answer, alg, rand)
	if err != nil {
		return nil, err
	}
	return k.Seal(plaintextThings, rand)
}

// Open derives the key of p from answer and opens p (see Key.Open).
func Open(answer string, p *Package) ([]byte, error) {
	k, err := DeriveKey(answer, p)
	if err != nil {
		return nil, err
	}
	return k.Open(p)
}

// padISO10126 returns dst[:0] (grown as needed) holding data, then n-1
// random bytes, then the byte n, where n in 1..bs makes the length a
// multiple of bs (a full block of padding when data is already aligned, as
// .NET does).
func padISO10126(dst, data []byte, bs int, r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	n := bs - len(data)%bs
	out := append(dst[:0], data...)
	out = append(out, make([]byte, n)...)
	if _, err := io.ReadFull(r, out[len(data):len(out)-1]); err != nil {
		return nil, fmt.Errorf("dopu: padding randomness: %w", err)
	}
	out[len(out)-1] = byte(n)
	return out, nil
}

// newGUID returns a random (version 4) GUID in .NET's default "D" format,
// which is lowercase with hyphens: xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx.
func newGUID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("dopu: salt randomness: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
