// Package blob implements the pieces of HealthVault's streamed blob
// interface (SPEC §4) that both ends share: the SHA256Block hash and the
// Content-Range header of chunk uploads (RFC 9110 §14.4, as HealthVault
// uses it: "bytes FIRST-LAST/TOTAL" with TOTAL possibly "*").
package blob

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
)

// DefaultBlockSize is the block size of the inline-blob SHA256Block hash in
// the HealthVault SDK (2 MiB).
const DefaultBlockSize = 2 << 20

// ErrEmpty is returned by Hasher.Root for a blob of zero bytes: the SDK
// defines no SHA256Block hash for it and dicomgate refuses empty streamed blobs.
var ErrEmpty = errors.New("blob: SHA256Block of an empty blob is undefined")

// Hasher computes the SHA256Block hash while data streams through it: the
// data is cut into blocks of BlockSize bytes (the last may be short), each
// block is hashed with SHA-256, and the root is SHA-256 of the concatenated
// block hashes. It keeps one block hash per block (32 bytes), never the data.
//
// Hasher implements hash.Hash; Sum appends the root (of the data written so
// far) to b.
type Hasher struct {
	blockSize int64
	cur       hash.Hash
	curLen    int64
	blocks    [][sha256.Size]byte
	total     int64
}

var _ hash.Hash = (*Hasher)(nil)

// NewHasher returns a SHA256Block hasher with the given block size.
// It panics if blockSize is not positive, a programming error.
func NewHasher(blockSize int64) *Hasher {
	if blockSize <= 0 {
		panic("blob: non-positive SHA256Block block size")
	}
	return &Hasher{blockSize: blockSize, cur: sha256.New()}
}

// Write hashes p. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := h.blockSize - h.curLen
		take := int64(len(p))
		if take > room {
			take = room
		}
		h.cur.Write(p[:take])
		h.curLen += take
		h.total += take
		p = p[take:]
		if h.curLen == h.blockSize {
			h.finishBlock()
		}
	}
	return n, nil
}

func (h *Hasher) finishBlock() {
	var s [sha256.Size]byte
	h.cur.Sum(s[:0])
	h.blocks = append(h.blocks, s)
	h.cur.Reset()
	h.curLen = 0
}

// Sum appends the SHA256Block root of the data written so far to b. For
// no data it appends SHA-256 of nothing; use Root to get ErrEmpty instead.
func (h *Hasher) Sum(b []byte) []byte {
	blocks := h.blocks
	if h.curLen > 0 {
		var s [sha256.Size]byte
		h.cur.Sum(s[:0])
		blocks = append(blocks[:len(blocks):len(blocks)], s)
	}
	return append(b, RootOf(blocks)...)
}

// Root returns the root hash of the data written so far, or ErrEmpty.
func (h *Hasher) Root() ([]byte, error) {
	if h.total == 0 {
		return nil, ErrEmpty
	}
	return h.Sum(nil), nil
}

// RootBase64 returns Root in base64, as hash-info carries it.
func (h *Hasher) RootBase64() (string, error) {
	r, err := h.Root()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(r), nil
}

// Reset forgets everything written.
func (h *Hasher) Reset() {
	h.cur.Reset()
	h.curLen = 0
	h.blocks = nil
	h.total = 0
}

// Size is the size of the root hash in bytes.
func (h *Hasher) Size() int { return sha256.Size }

// BlockSize returns the SHA256Block block size (not SHA-256's own block size;
// callers that want aligned writes should write in multiples of it).
func (h *Hasher) BlockSize() int { return int(h.blockSize) }

// Len returns the number of bytes written.
func (h *Hasher) Len() int64 { return h.total }

// Blocks returns the hashes of the complete blocks written so far.
func (h *Hasher) Blocks() [][sha256.Size]byte { return h.blocks }

// RootOf returns SHA-256 of the concatenated block hashes.
func RootOf(blocks [][sha256.Size]byte) []byte {
	r := sha256.New()
	for i := range blocks {
		r.Write(blocks[i][:])
	}
	return r.Sum(nil)
}

// Resume returns a hasher that continues after complete blocks whose hashes
// are given (an upload resumed after its last acknowledged block).
func Resume(blockSize int64, blocks [][sha256.Size]byte) *Hasher {
	h := NewHasher(blockSize)
	h.blocks = append(h.blocks, blocks...)
	h.total = int64(len(blocks)) * blockSize
	return h
}
