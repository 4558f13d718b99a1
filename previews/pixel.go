package previews

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// imageInfo is the Image Pixel Module (PS3.3 C.7.6.3) of an instance, checked
// for consistency.
type imageInfo struct {
	rows, cols    int
	spp           int
	bitsAllocated int
	bitsStored    int
	highBit       int
	signed        bool
	photometric   string
	planar        int
	frames        int
	bigEndian     bool
	transfer      string
}

// pixelsPerFrame is rows*cols; both are at most 65535, so this fits an int.
func (in *imageInfo) pixelsPerFrame() int { return in.rows * in.cols }

func imageInfoFrom(ds *dataset, h *header, opts *Options) (*imageInfo, error) {
	in := &imageInfo{
		rows:          ds.us(tagRows, 0),
		cols:          ds.us(tagColumns, 0),
		spp:           ds.us(tagSamplesPerPixel, 1),
		bitsAllocated: ds.us(tagBitsAllocated, 0),
		signed:        ds.us(tagPixelRepresentation, 0) == 1,
		photometric:   strings.ToUpper(ds.str(tagPhotometric)),
		planar:        ds.us(tagPlanarConfiguration, 0),
		bigEndian:     h.bigEndian,
		transfer:      h.transferSyntax,
	}
	in.bitsStored = ds.us(tagBitsStored, in.bitsAllocated)
	in.highBit = ds.us(tagHighBit, in.bitsStored-1)
	in.frames = 1
	if s := ds.str(tagNumberOfFrames); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: invalid Number of Frames %q", ErrCorrupt, s)
		}
		in.frames = n
	}
	if in.photometric == "" {
		// ACR-NEMA files may omit it; the sample count says what it must be.
		if in.spp == 1 {
			in.photometric = "MONOCHROME2"
		} else {
			in.photometric = "RGB"
		}
	}
	switch {
	case in.rows == 0 || in.cols == 0:
		return nil, fmt.Errorf("%w: missing or zero Rows/Columns", ErrCorrupt)
	case in.spp != 1 && in.spp != 3:
		return nil, fmt.Errorf("%w: %d samples per pixel", ErrUnsupported, in.spp)
	case in.bitsAllocated != 1 && in.bitsAllocated != 8 && in.bitsAllocated != 16 && in.bitsAllocated != 32:
		return nil, fmt.Errorf("%w: %d bits allocated", ErrUnsupported, in.bitsAllocated)
	case in.bitsStored < 1 || in.bitsStored > in.bitsAllocated:
		return nil, fmt.Errorf("%w: bits stored %d with bits allocated %d", ErrCorrupt, in.bitsStored, in.bitsAllocated)
	case in.highBit < in.bitsStored-1 || in.highBit >= in.bitsAllocated:
		return nil, fmt.Errorf("%w: high bit %d with bits stored %d and allocated %d", ErrCorrupt, in.highBit, in.bitsStored, in.bitsAllocated)
	}
	if int64(in.rows)*int64(in.cols) > opts.MaxPixels {
		return nil, fmt.Errorf("%w: %dx%d pixels exceeds the limit of %d", ErrTooLarge, in.cols, in.rows, opts.MaxPixels)
	}
	mono := in.photometric == "MONOCHROME1" || in.photometric == "MONOCHROME2"
	if mono != (in.spp == 1) && in.photometric != "PALETTE COLOR" {
		return nil, fmt.Errorf("%w: photometric interpretation %s with %d samples per pixel", ErrCorrupt, in.photometric, in.spp)
	}
	if in.photometric == "PALETTE COLOR" && in.spp != 1 {
		return nil, fmt.Errorf("%w: PALETTE COLOR with %d samples per pixel", ErrCorrupt, in.spp)
	}
	return in, nil
}

// nativeFrameBits is the size of one native frame in bits, which for 1-bit
// data need not be a whole number of bytes. YBR_FULL_422 stores two samples per pixel
// (PS3.3 C.7.6.3.1.2).
func (in *imageInfo) nativeFrameBits() int64 {
	samples := int64(in.pixelsPerFrame()) * int64(in.spp)
	if in.photometric == "YBR_FULL_422" || in.photometric == "YBR_PARTIAL_422" {
		samples = int64(in.rows) * int64((in.cols+1)/2*2) * 2
	}
	return samples * int64(in.bitsAllocated)
}

// rawFrame is one decoded frame before the pixel pipeline: either native
// little- or big-endian bytes as in PS3.5 section 8.1, or the samples a codec
// produced.
type rawFrame struct {
	native    []byte
	bitOffset int  // first bit of the frame in native (1-bit data only)
	planar    bool // native or samples are colour-by-plane
	bigEndian bool

	samples   []uint16 // interleaved codec output, values as coded
	width     int
	height    int
	spp       int
	precision int
	signed    bool

	// photometric overrides the data set's photometric interpretation when
	// the codec has already transformed colour (JPEG 2000 MCT) or when the
	// JPEG stream's markers say what its components are.
	photometric string
}

// source reads byte ranges of the data set, either directly (files stored
// as is) or by inflating again from the start (deflated data sets, which
// cannot be addressed).
type source struct {
	r    io.ReaderAt
	size int64
	h    *header
}

// readRange reads n bytes at offset off of the data set.
func (src *source) readRange(off int64, n int64) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: negative range", ErrCorrupt)
	}
	b := make([]byte, n)
	return b, src.readAt(b, off)
}

// readAt fills b with the bytes at offset off of the data set.
func (src *source) readAt(b []byte, off int64) error {
	n := int64(len(b))
	if off < 0 {
		return fmt.Errorf("%w: negative range", ErrCorrupt)
	}
	if !src.h.deflated {
		if off+n > src.size {
			return fmt.Errorf("%w: pixel data runs past the end of the file (needs %d bytes at %d, file has %d)", ErrCorrupt, n, off, src.size)
		}
		if _, err := src.r.ReadAt(b, off); err != nil && !(err == io.EOF && off+n == src.size) {
			return fmt.Errorf("%w: read pixel data: %w", ErrCorrupt, err)
		}
		return nil
	}
	s := openDataset(src.r, src.size, src.h)
	if err := s.skip(off); err != nil {
		return err
	}
	return s.read(b)
}

// readNativeFrame reads the bytes of frame idx of native pixel data.
func readNativeFrame(src *source, loc *pixelLocation, in *imageInfo, idx int, opts *Options) (*rawFrame, error) {
	frameBits := in.nativeFrameBits()
	if frameBits/8 > opts.MaxFrameBytes {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d", ErrTooLarge, frameBits/8, opts.MaxFrameBytes)
	}
	startBit := frameBits * int64(idx)
	endBit := startBit + frameBits
	need := (endBit + 7) / 8
	if int64(loc.length) < need {
		// Some writers declare more frames than they store; render the last
		// complete one rather than refuse the file.
		complete := int64(loc.length) * 8 / frameBits
		if complete < 1 {
			return nil, fmt.Errorf("%w: pixel data has %d bytes, one frame needs %d", ErrCorrupt, loc.length, (frameBits+7)/8)
		}
		startBit = frameBits * ((complete - 1) / 2)
		endBit = startBit + frameBits
		need = (endBit + 7) / 8
	}
	first := startBit / 8
	// 8-bit samples encoded as OW in big endian have their bytes swapped
	// in pairs (PS3.5 section 7.3): read whole words and swap them back.
	swapWords := in.bigEndian && loc.vr == "OW" && in.bitsAllocated == 8
	if swapWords {
		if first%2 == 1 {
			return nil, fmt.Errorf("%w: 8-bit OW big endian frame at an odd offset", ErrUnsupported)
		}
		need += need % 2
		if need > int64(loc.length) {
			return nil, fmt.Errorf("%w: pixel data has %d bytes, frame needs %d", ErrCorrupt, loc.length, need)
		}
	}
	b, err := src.readRange(loc.offset+first, need-first)
	if err != nil {
		return nil, err
	}
	if swapWords {
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	return &rawFrame{native: b, bitOffset: int(startBit - first*8), planar: in.planar == 1 && in.spp == 3, bigEndian: in.bigEndian}, nil
}

// fragment is one item of encapsulated pixel data (PS3.5 A.4).
type fragment struct {
	itemOffset  int64 // offset of the item tag, relative to the first fragment's item tag
	valueOffset int64 // absolute offset of the value in the data set stream
	length      int64
	head        [4]byte
}

// maxFragments bounds the fragment list of hostile files.
const maxFragments = 1 << 20

// readFragments reads the item headers of encapsulated pixel data from s,
// which is positioned at the value of the Pixel Data element, skipping the
// fragments' contents. It returns the Basic Offset Table and the fragments.
func readFragments(s *stream, bo binary.ByteOrder) ([]uint32, []fragment, error) {
	var hdr [8]byte
	readItem := func() (uint32, int64, error) {
		if err := s.read(hdr[:]); err != nil {
			return 0, 0, err
		}
		tag := uint32(bo.Uint16(hdr[0:]))<<16 | uint32(bo.Uint16(hdr[2:]))
		return tag, int64(bo.Uint32(hdr[4:])), nil
	}
	tag, n, err := readItem()
	if err != nil {
		return nil, nil, err
	}
	if tag != tagItem || n == undefinedLength {
		return nil, nil, fmt.Errorf("%w: encapsulated pixel data does not start with the Basic Offset Table item", ErrCorrupt)
	}
	if n%4 != 0 || n > 4*maxFragments {
		return nil, nil, fmt.Errorf("%w: Basic Offset Table of %d bytes", ErrCorrupt, n)
	}
	botBytes := make([]byte, n)
	if err := s.read(botBytes); err != nil {
		return nil, nil, err
	}
	bot := make([]uint32, n/4)
	for i := range bot {
		bot[i] = bo.Uint32(botBytes[4*i:])
	}
	var frags []fragment
	first := s.pos
	for {
		itemPos := s.pos
		tag, n, err := readItem()
		if err != nil {
			// A missing sequence delimiter at the end of the file is a
			// common writer bug; the fragments read so far are usable.
			if len(frags) > 0 {
				if b, _ := s.peek(1); len(b) == 0 {
					return bot, frags, nil
				}
			}
			return nil, nil, err
		}
		if tag == tagSeqDelim {
			return bot, frags, nil
		}
		if tag != tagItem || n == undefinedLength {
			return nil, nil, fmt.Errorf("%w: unexpected (%04X,%04X) in encapsulated pixel data", ErrCorrupt, tag>>16, tag&0xFFFF)
		}
		if len(frags) >= maxFragments {
			return nil, nil, fmt.Errorf("%w: more than %d fragments", ErrTooLarge, maxFragments)
		}
		f := fragment{itemOffset: itemPos - first, valueOffset: s.pos, length: n}
		if b, _ := s.peek(4); len(b) == 4 && n >= 4 {
			copy(f.head[:], b)
		}
		if err := s.skip(n); err != nil {
			return nil, nil, err
		}
		frags = append(frags, f)
	}
}

// frameFragments picks the fragments of frame idx (PS3.5 A.4): by the
// Extended Offset Table, by the Basic Offset Table, one fragment per frame,
// all fragments for a single frame, or by the codestream start markers.
func frameFragments(frags []fragment, bot []uint32, eot []uint64, frames, idx int) ([]fragment, error) {
	if len(frags) == 0 {
		return nil, fmt.Errorf("%w: encapsulated pixel data has no fragments", ErrCorrupt)
	}
	if frames == 1 {
		return frags, nil
	}
	byOffsets := func(offs []int64) ([]fragment, error) {
		if idx >= len(offs) {
			return nil, fmt.Errorf("%w: offset table has %d entries for %d frames", ErrCorrupt, len(offs), frames)
		}
		lo := offs[idx]
		hi := int64(1) << 62
		if idx+1 < len(offs) {
			hi = offs[idx+1]
		}
		var out []fragment
		for _, f := range frags {
			if f.itemOffset >= lo && f.itemOffset < hi {
				out = append(out, f)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: offset table entry %d (%d) matches no fragment", ErrCorrupt, idx, lo)
		}
		return out, nil
	}
	if len(eot) > 0 {
		offs := make([]int64, len(eot))
		for i, o := range eot {
			offs[i] = int64(min(o, 1<<62))
		}
		return byOffsets(offs)
	}
	if len(bot) > 0 {
		offs := make([]int64, len(bot))
		for i, o := range bot {
			offs[i] = int64(o)
		}
		return byOffsets(offs)
	}
	if len(frags) == frames {
		return frags[idx : idx+1], nil
	}
	// No offset table and more fragments than frames: a frame starts with
	// a fragment that starts a codestream (JPEG SOI, JPEG 2000 SOC).
	var starts []int64
	for _, f := range frags {
		if f.head[0] == 0xFF && (f.head[1] == 0xD8 || f.head[1] == 0x4F) {
			starts = append(starts, f.itemOffset)
		}
	}
	if len(starts) == frames {
		return byOffsets(starts)
	}
	return nil, fmt.Errorf("%w: cannot tell which of %d fragments belong to which of %d frames", ErrCorrupt, len(frags), frames)
}

// readEncapsulatedFrame reads frame idx of encapsulated pixel data whose
// value starts at the current position of s.
func readEncapsulatedFrame(src *source, s *stream, ds *dataset, in *imageInfo, idx int, opts *Options) ([]byte, error) {
	bot, frags, err := readFragments(s, binary.LittleEndian)
	if err != nil {
		return nil, err
	}
	var eot []uint64
	if raw := ds.raw(tagExtendedOffsetTable); len(raw) >= 8 {
		eot = make([]uint64, len(raw)/8)
		for i := range eot {
			eot[i] = binary.LittleEndian.Uint64(raw[8*i:])
		}
	}
	sel, err := frameFragments(frags, bot, eot, in.frames, idx)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range sel {
		total += f.length
	}
	if total > opts.MaxFrameBytes {
		return nil, fmt.Errorf("%w: compressed frame of %d bytes exceeds the limit of %d", ErrTooLarge, total, opts.MaxFrameBytes)
	}
	// Each fragment is read straight into its place in the frame.
	out := make([]byte, total)
	at := out
	for _, f := range sel {
		if err := src.readAt(at[:f.length], f.valueOffset); err != nil {
			return nil, err
		}
		at = at[f.length:]
	}
	return out, nil
}
