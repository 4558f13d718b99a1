package previews

import (
	"encoding/binary"
	"fmt"
)

// samples is one frame as stored values (PS3.3 C.7.6.3.1): interleaved,
// already shifted down from the high bit, masked to Bits Stored and sign
// extended when Pixel Representation is 1.
type samples struct {
	width, height, spp int
	pix                []int64
	// photometric is what the values are after decoding; it can differ
	// from the data set's (e.g. YBR_FULL_422 is stored as YBR_FULL once
	// upsampled, and JPEG 2000 has already undone its colour transform).
	photometric string
	bitsStored  int
	signed      bool
}

// storedValue extracts the stored value from an allocated word (PS3.5
// section 8.1.1): shift down so the high bit is bit bitsStored-1, mask, and
// sign extend from that bit when signed.
type storedValue struct {
	shift  uint
	mask   uint64
	sign   uint64
	signed bool
}

func newStoredValue(bitsStored, highBit int, signed bool) storedValue {
	return storedValue{
		shift:  uint(highBit + 1 - bitsStored),
		mask:   1<<uint(bitsStored) - 1,
		sign:   1 << uint(bitsStored-1),
		signed: signed,
	}
}

func (sv storedValue) of(word uint64) int64 {
	v := (word >> sv.shift) & sv.mask
	if sv.signed && v&sv.sign != 0 {
		return int64(v) - int64(sv.mask) - 1
	}
	return int64(v)
}

// toSamples turns a decoded frame into stored values.
func toSamples(f *rawFrame, in *imageInfo) (*samples, error) {
	s := &samples{width: in.cols, height: in.rows, spp: in.spp, photometric: in.photometric, bitsStored: in.bitsStored, signed: in.signed}
	if f.photometric != "" {
		s.photometric = f.photometric
	}
	n := in.pixelsPerFrame() * in.spp
	s.pix = make([]int64, n)
	if f.samples != nil {
		// Codec output carries the stored values in its low bits.
		bits := in.bitsStored
		if f.precision > 0 && f.precision < bits {
			bits = f.precision
		}
		sv := newStoredValue(bits, bits-1, in.signed || f.signed)
		for i := range s.pix {
			s.pix[i] = sv.of(uint64(f.samples[i]))
		}
		s.bitsStored = bits
		if f.planar {
			s.pix = interleave(s.pix, in.spp)
		}
		return s, nil
	}
	if in.photometric == "YBR_FULL_422" || in.photometric == "YBR_PARTIAL_422" {
		if in.spp != 3 {
			return nil, fmt.Errorf("%w: %s with %d samples per pixel", ErrCorrupt, in.photometric, in.spp)
		}
		return s, expand422(s, f, in)
	}
	sv := newStoredValue(in.bitsStored, in.highBit, in.signed)
	var bo binary.ByteOrder = binary.LittleEndian
	if f.bigEndian {
		bo = binary.BigEndian
	}
	b := f.native
	switch in.bitsAllocated {
	case 1:
		if int64(len(b))*8 < int64(f.bitOffset)+int64(n) {
			return nil, fmt.Errorf("%w: short frame", ErrCorrupt)
		}
		for i := range s.pix {
			bit := f.bitOffset + i
			s.pix[i] = int64(b[bit/8]>>(uint(bit)%8)) & 1
		}
	case 8:
		if len(b) < n {
			return nil, fmt.Errorf("%w: short frame", ErrCorrupt)
		}
		for i := range s.pix {
			s.pix[i] = sv.of(uint64(b[i]))
		}
	case 16:
		if len(b) < 2*n {
			return nil, fmt.Errorf("%w: short frame", ErrCorrupt)
		}
		for i := range s.pix {
			s.pix[i] = sv.of(uint64(bo.Uint16(b[2*i:])))
		}
	case 32:
		if len(b) < 4*n {
			return nil, fmt.Errorf("%w: short frame", ErrCorrupt)
		}
		for i := range s.pix {
			s.pix[i] = sv.of(uint64(bo.Uint32(b[4*i:])))
		}
	}
	if f.planar {
		s.pix = interleave(s.pix, in.spp)
	}
	return s, nil
}

// interleave turns colour-by-plane samples into colour-by-pixel.
func interleave(p []int64, spp int) []int64 {
	if spp == 1 {
		return p
	}
	n := len(p) / spp
	out := make([]int64, len(p))
	for c := 0; c < spp; c++ {
		plane := p[c*n : (c+1)*n]
		for i, v := range plane {
			out[i*spp+c] = v
		}
	}
	return out
}

// expand422 reads native YBR_FULL_422 data (PS3.3 C.7.6.3.1.2: for each
// pair of pixels Y1 Y2 Cb Cr) into full-resolution YCbCr samples.
func expand422(s *samples, f *rawFrame, in *imageInfo) error {
	sv := newStoredValue(in.bitsStored, in.highBit, in.signed)
	bytesPer := in.bitsAllocated / 8
	if bytesPer != 1 && bytesPer != 2 {
		return fmt.Errorf("%w: %s with %d bits allocated", ErrUnsupported, in.photometric, in.bitsAllocated)
	}
	pairs := (in.cols + 1) / 2
	need := in.rows * pairs * 4 * bytesPer
	if len(f.native) < need {
		return fmt.Errorf("%w: short frame", ErrCorrupt)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if f.bigEndian {
		bo = binary.BigEndian
	}
	get := func(i int) int64 {
		if bytesPer == 1 {
			return sv.of(uint64(f.native[i]))
		}
		return sv.of(uint64(bo.Uint16(f.native[2*i:])))
	}
	k := 0
	for y := 0; y < in.rows; y++ {
		for p := 0; p < pairs; p++ {
			y1, y2, cb, cr := get(k), get(k+1), get(k+2), get(k+3)
			k += 4
			x := 2 * p
			o := 3 * (y*in.cols + x)
			s.pix[o], s.pix[o+1], s.pix[o+2] = y1, cb, cr
			if x+1 < in.cols {
				s.pix[o+3], s.pix[o+4], s.pix[o+5] = y2, cb, cr
			}
		}
	}
	if in.photometric == "YBR_FULL_422" {
		s.photometric = "YBR_FULL"
	} else {
		s.photometric = "YBR_PARTIAL_420" // same equations as 422 once expanded
	}
	return nil
}
