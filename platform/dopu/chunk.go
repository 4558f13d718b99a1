package dopu

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"dicomgate/platform/dopu/rijndael"
)

// Streamed blobs of a package (BeginPutConnectPackageBlob) are encrypted
// chunk by chunk, as the SDK's BlobStream.WriteChunk did: the blob is cut
// into chunks of blob-pre-encryption-chunk-size plaintext bytes (the last
// one may be shorter, and is never empty) and each chunk is encrypted on
// its own with the package key AND the package IV — a fresh CBC encryptor
// per chunk — with ISO 10126 padding. The cipher is the package's: the SDK
// names it "aes256" in the BeginPutConnectPackageBlob response, but its
// BlobChunkEncryptionAlgorithm is the same RijndaelManaged object as the
// package's (256-bit block). An encrypted full chunk is thus
// PostEncryptionChunkSize(pre) = pre - pre%32 + 32 bytes, and chunk i
// starts at byte i*post of the encrypted blob (the Content-Range offsets).
// The SHA256Block hash is computed over the plaintext chunks.
//
// Reusing the IV for every chunk is the SDK's format, not a choice:
// chunks that begin with the same 32 bytes encrypt to the same first block,
// which leaks that equality to the store. The chunks carry no MAC; a
// blob's integrity comes from its content-length and SHA256Block hash inside
// the package's authenticated thing XML, which the platform must check after
// decrypting: in particular a blob cut after a whole chunk decrypts without
// error to a prefix of the plaintext.

// MaxChunkSize bounds the pre-encryption chunk size (and so the memory a
// chunk encrypter or decrypter holds).
const MaxChunkSize = 64 << 20

// ErrCorruptChunk means an encrypted chunk has an impossible length or padding
// (wrong key, wrong chunk size or damaged data).
var ErrCorruptChunk = errors.New("dopu: encrypted blob chunk does not decrypt")

// ErrChunkSize means a chunk size outside 1..MaxChunkSize.
var ErrChunkSize = errors.New("dopu: invalid blob chunk size")

// PostEncryptionChunkSize is blob-post-encryption-chunk-size for a given
// blob-pre-encryption-chunk-size: the ISO 10126 padded length, which always
// adds 1..32 bytes.
func PostEncryptionChunkSize(preChunkSize int) int {
	return preChunkSize - preChunkSize%rijndael.BlockSize + rijndael.BlockSize
}

func (k *Key) checkChunking(pre int) error {
	if k.alg != HMACSHA256AES256 {
		return fmt.Errorf("%w: streamed blobs need %s", ErrUnsupportedAlgorithm, HMACSHA256AES256)
	}
	if pre < 1 || pre > MaxChunkSize {
		return fmt.Errorf("%w: %d", ErrChunkSize, pre)
	}
	return nil
}

// Chunk is one encrypted chunk of a streamed blob. Its slices are only
// valid until the next call to Next.
type Chunk struct {
	Index           int
	Offset          int64  // offset of Ciphertext in the encrypted blob (Content-Range start)
	PlaintextOffset int64  // offset of Plaintext in the blob
	Plaintext       []byte // for the caller's SHA256Block hash
	Ciphertext      []byte // what is POSTed
	Last            bool   // no chunk follows
}

// ChunkEncrypter reads a blob's plaintext and produces its encrypted
// chunks, holding one chunk in memory.
type ChunkEncrypter struct {
	k      *Key
	src    *bufio.Reader
	pre    int
	post   int
	rand   io.Reader
	chunk  Chunk
	plain  []byte
	ct     []byte
	next   int   // index of the next chunk
	done   bool  // Last chunk produced or empty blob
	err    error // sticky
	unread []byte
}

// NewChunkEncrypter returns an encrypter of src in chunks of preChunkSize
// plaintext bytes (blob-pre-encryption-chunk-size). rand (crypto/rand when
// nil) supplies the padding.
func (k *Key) NewChunkEncrypter(src io.Reader, preChunkSize int, rand io.Reader) (*ChunkEncrypter, error) {
	if err := k.checkChunking(preChunkSize); err != nil {
		return nil, err
	}
	post := PostEncryptionChunkSize(preChunkSize)
	return &ChunkEncrypter{
		k: k, src: bufio.NewReader(src), pre: preChunkSize, post: post, rand: rand,
		plain: make([]byte, preChunkSize), ct: make([]byte, 0, post),
	}, nil
}

// Next returns the next chunk, or io.EOF after the last one. An empty blob
// has no chunks at all.
func (e *ChunkEncrypter) Next() (*Chunk, error) {
	if e.err != nil {
		return nil, e.err
	}
	if e.done {
		return nil, io.EOF
	}
	n, err := io.ReadFull(e.src, e.plain)
	switch {
	case errors.Is(err, io.EOF):
		e.done = true
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		e.done = true
	case err != nil:
		e.err = fmt.Errorf("dopu: reading blob: %w", err)
		return nil, e.err
	default:
		if _, perr := e.src.Peek(1); errors.Is(perr, io.EOF) {
			e.done = true
		} else if perr != nil {
			e.err = fmt.Errorf("dopu: reading blob: %w", perr)
			return nil, e.err
		}
	}
	ct, err := e.k.encryptCBC(e.ct, e.plain[:n], e.rand)
	if err != nil {
		e.err = err
		return nil, err
	}
	e.ct = ct
	e.chunk = Chunk{
		Index:           e.next,
		Offset:          int64(e.next) * int64(e.post),
		PlaintextOffset: int64(e.next) * int64(e.pre),
		Plaintext:       e.plain[:n],
		Ciphertext:      ct,
		Last:            e.done,
	}
	e.next++
	return &e.chunk, nil
}

// Read implements io.Reader over the concatenated encrypted chunks, for
// callers that store the encrypted blob as one stream. Do not mix with Next.
func (e *ChunkEncrypter) Read(p []byte) (int, error) {
	for len(e.unread) == 0 {
		c, err := e.Next()
		if err != nil {
			return 0, err
		}
		e.unread = c.Ciphertext
	}
	n := copy(p, e.unread)
	e.unread = e.unread[n:]
	return n, nil
}

// ChunkDecrypter reads an encrypted blob (the concatenated chunks) and
// yields its plaintext, decrypting one chunk at a time.
type ChunkDecrypter struct {
	k      *Key
	src    *bufio.Reader
	pre    int
	ct     []byte
	plain  []byte
	unread []byte
	index  int
	done   bool
	err    error
}

// NewChunkDecrypter returns a reader of the plaintext of the encrypted blob
// src, which was encrypted in chunks of preChunkSize plaintext bytes.
func (k *Key) NewChunkDecrypter(src io.Reader, preChunkSize int) (*ChunkDecrypter, error) {
	if err := k.checkChunking(preChunkSize); err != nil {
		return nil, err
	}
	post := PostEncryptionChunkSize(preChunkSize)
	return &ChunkDecrypter{
		k: k, src: bufio.NewReader(src), pre: preChunkSize,
		ct: make([]byte, post), plain: make([]byte, 0, post),
	}, nil
}

// Read implements io.Reader. A malformed chunk is an error wrapping
// ErrCorruptChunk; the plaintext must still be checked against the blob's
// SHA256Block hash.
func (d *ChunkDecrypter) Read(p []byte) (int, error) {
	for len(d.unread) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		d.err = d.decryptNext()
	}
	n := copy(p, d.unread)
	d.unread = d.unread[n:]
	return n, nil
}

func (d *ChunkDecrypter) decryptNext() error {
	n, err := io.ReadFull(d.src, d.ct)
	last := false
	switch {
	case errors.Is(err, io.EOF):
		d.done = true
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case err != nil:
		return fmt.Errorf("dopu: reading encrypted blob: %w", err)
	default:
		if _, perr := d.src.Peek(1); errors.Is(perr, io.EOF) {
			last = true
		} else if perr != nil {
			return fmt.Errorf("dopu: reading encrypted blob: %w", perr)
		}
	}
	plain, ok := d.k.decryptCBC(d.plain, d.ct[:n])
	switch {
	case !ok:
		return fmt.Errorf("%w: chunk %d: bad length or padding", ErrCorruptChunk, d.index)
	case !last && len(plain) != d.pre:
		return fmt.Errorf("%w: chunk %d: %d plaintext bytes, want %d", ErrCorruptChunk, d.index, len(plain), d.pre)
	case last && (len(plain) == 0 || len(plain) > d.pre):
		return fmt.Errorf("%w: last chunk %d: %d plaintext bytes, want 1..%d", ErrCorruptChunk, d.index, len(plain), d.pre)
	}
	d.plain = plain
	d.unread = plain
	d.done = last
	d.index++
	return nil
}
