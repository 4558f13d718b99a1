// Package rle decodes DICOM RLE Lossless pixel data (transfer syntax
// 1.2.840.10008.1.2.5) as defined in DICOM PS3.5 Annex G.
//
// An RLE frame starts with a 64-byte header: the number of segments and up
// to fifteen segment offsets, little-endian 32-bit. Each segment is one
// byte plane compressed with the PackBits scheme of G.3.1; for every sample
// of a pixel there are bitsAllocated/8 segments, most significant byte
// first (G.2). Decode returns the frame as native pixel data: little-endian
// samples with Planar Configuration 1, all of sample 0 then all of
// sample 1 and so on, which is the order RLE codes them in.
//
// Every count and offset is checked against the data before it is used and
// before anything is allocated; damaged input yields an error wrapping
// ErrCorrupt, never a panic.
package rle

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxFrameBytes bounds the decoded size of one frame (1 GiB).
const MaxFrameBytes = 1 << 30

// headerSize is the length of the RLE header (G.5).
const headerSize = 64

// maxSegments is how many segment offsets the header has room for.
const maxSegments = 15

var (
	// ErrUnsupported reports parameters RLE Lossless in DICOM does not
	// use here: bits allocated other than 8, 16 or 32, or samples per
	// pixel other than 1 or 3.
	ErrUnsupported = errors.New("rle: unsupported parameters")
	// ErrCorrupt reports a frame whose header or segments are damaged;
	// the wrapping error says how.
	ErrCorrupt = errors.New("rle: corrupt data")
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Decode decodes one RLE-compressed frame of rows x cols pixels with
// samplesPerPixel samples of bitsAllocated bits each. The result has
// rows*cols*samplesPerPixel*bitsAllocated/8 bytes, little-endian, planar
// configuration 1.
func Decode(data []byte, rows, cols, samplesPerPixel, bitsAllocated int) ([]byte, error) {
	if bitsAllocated != 8 && bitsAllocated != 16 && bitsAllocated != 32 {
		return nil, fmt.Errorf("%w: bits allocated %d", ErrUnsupported, bitsAllocated)
	}
	if samplesPerPixel != 1 && samplesPerPixel != 3 {
		return nil, fmt.Errorf("%w: samples per pixel %d", ErrUnsupported, samplesPerPixel)
	}
	if rows <= 0 || cols <= 0 || rows > 0xFFFF || cols > 0xFFFF {
		return nil, fmt.Errorf("%w: frame size %dx%d", ErrUnsupported, cols, rows)
	}
	bps := bitsAllocated / 8
	pixels := rows * cols
	nseg := samplesPerPixel * bps
	size := int64(pixels) * int64(nseg)
	if size > MaxFrameBytes {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds limit %d", ErrUnsupported, size, int64(MaxFrameBytes))
	}
	if len(data) < headerSize {
		return nil, corrupt("frame of %d bytes is shorter than the RLE header", len(data))
	}
	// A PackBits run of two bytes yields at most 128 bytes, so a segment
	// of n bytes decodes to at most 64*n; refuse frames that claim more
	// than the data could hold before allocating for them.
	if size > 64*int64(len(data)-headerSize)+int64(nseg) {
		return nil, corrupt("%d bytes of segments cannot decode to %d bytes", len(data)-headerSize, size)
	}
	count := int(binary.LittleEndian.Uint32(data))
	if count != nseg {
		return nil, corrupt("header has %d segments, %d samples of %d bits need %d", count, samplesPerPixel, bitsAllocated, nseg)
	}
	var offsets [maxSegments + 1]int
	for i := 0; i < count; i++ {
		off := binary.LittleEndian.Uint32(data[4+4*i:])
		if off < headerSize || uint64(off) > uint64(len(data)) {
			return nil, corrupt("segment %d offset %d outside frame of %d bytes", i, off, len(data))
		}
		offsets[i] = int(off)
		if i > 0 && offsets[i] < offsets[i-1] {
			return nil, corrupt("segment %d offset %d before segment %d offset %d", i, off, i-1, offsets[i-1])
		}
	}
	offsets[count] = len(data)
	out := make([]byte, size)
	for i := 0; i < count; i++ {
		sample, b := i/bps, i%bps
		// Segment b of a sample holds byte bps-1-b of each little-endian
		// sample (the most significant byte comes first).
		start := sample*pixels*bps + (bps - 1 - b)
		if err := unpackBits(data[offsets[i]:offsets[i+1]], out[start:], bps, pixels); err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
	}
	return out, nil
}

// unpackBits decodes a PackBits segment (PS3.5 G.3.1) into n bytes of dst
// at positions 0, stride, 2*stride, …. A header byte h of 0..127 copies the
// next h+1 bytes literally, -1..-127 repeats the next byte 1-h times, -128
// does nothing. Output beyond n bytes (segment padding) is ignored; a
// segment that yields fewer than n bytes is corrupt.
func unpackBits(seg, dst []byte, stride, n int) error {
	o := 0 // output bytes written
	p := 0
	for o < n {
		if p >= len(seg) {
			return corrupt("segment ends after %d of %d bytes", o, n)
		}
		h := int(int8(seg[p]))
		p++
		switch {
		case h >= 0:
			run := h + 1
			if p+run > len(seg) {
				return corrupt("literal run of %d bytes overruns segment", run)
			}
			run = min(run, n-o)
			for _, v := range seg[p : p+run] {
				dst[o*stride] = v
				o++
			}
			p += h + 1
		case h != -128:
			if p >= len(seg) {
				return corrupt("replicate run without its byte")
			}
			v := seg[p]
			p++
			run := min(1-h, n-o)
			if stride == 1 {
				fill := dst[o : o+run]
				for k := range fill {
					fill[k] = v
				}
				o += run
				continue
			}
			for k := 0; k < run; k++ {
				dst[o*stride] = v
				o++
			}
		}
	}
	return nil
}
