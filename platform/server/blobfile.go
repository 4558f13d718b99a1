package server

import (
	"errors"
	"os"
	"unsafe"
)

// directAlign is the alignment O_DIRECT asks of buffer addresses, file
// offsets and lengths: the largest logical block size of common disks.
const directAlign = 4096

// maxPiece bounds the buffer a chunk passes through on its way to the disk:
// large, so a chunk costs few system calls and direct writes reach the
// disk in big requests, yet far below a chunk when chunks are large.
const maxPiece = 1 << 20

// directMin is the smallest write that goes direct: below it the page
// cache copy is cheap, and small blobs (DICOM files, previews) are spared
// a second open.
const directMin = 256 << 10

// alignedBuffer returns a zeroed n-byte slice whose first byte sits on a
// directAlign boundary, as O_DIRECT writes need.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip+n : skip+n]
}

// chunkFile writes the chunks of one blob file. Aligned pieces go through
// a descriptor opened with O_DIRECT where the file system allows it: the
// bytes go from the receive buffer to the disk without being copied into
// (and later evicted from) the page cache, which on a 1 GiB blob costs more
// CPU than hashing it. Unaligned pieces (a blob's tail) are written through
// the page cache. Sync makes both durable with one fdatasync: data and the
// size that reaches it, not timestamps.
type chunkFile struct {
	path     string
	buffered *os.File
	direct   *os.File // opened on the first aligned piece
	noDirect bool     // O_DIRECT is not available
}

// openChunkFile opens the blob file at path for writing; with create, it
// creates the file if it is missing.
func openChunkFile(path string, create bool) (*chunkFile, error) {
	flag := os.O_WRONLY
	if create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	return &chunkFile{path: path, buffered: f}, nil
}

// WriteAt writes p at off, directly for its aligned prefix when it can.
func (c *chunkFile) WriteAt(p []byte, off int64) error {
	n := len(p) - len(p)%directAlign
	if n >= directMin && !c.noDirect && off%directAlign == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0 {
		if c.direct == nil {
			c.direct = openDirect(c.path)
			c.noDirect = c.direct == nil
		}
		if c.direct != nil {
			if _, err := c.direct.WriteAt(p[:n], off); err != nil {
				if !isDirectRefused(err) {
					return err
				}
				// The file system took the open but refuses the I/O:
				// go through the page cache from now on.
				c.direct.Close()
				c.direct, c.noDirect = nil, true
				n = 0
			}
			p, off = p[n:], off+int64(n)
		}
	}
	if len(p) == 0 {
		return nil
	}
	_, err := c.buffered.WriteAt(p, off)
	return err
}

// Sync makes every byte written durable.
func (c *chunkFile) Sync() error { return datasync(c.buffered) }

// Close closes both descriptors.
func (c *chunkFile) Close() error {
	var err error
	if c.direct != nil {
		err = c.direct.Close()
	}
	return errors.Join(err, c.buffered.Close())
}
