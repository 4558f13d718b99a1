package previews

import (
	"fmt"
	"image"
	"math"
)

// to8 scales a stored colour sample of the given bit depth to 8 bits.
func to8(v int64, bits int) float64 {
	if bits == 8 {
		return float64(v)
	}
	return float64(v) * 255 / float64(uint64(1)<<uint(bits)-1)
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// renderColor renders RGB, YBR and PALETTE COLOR frames (PS3.3
// C.7.6.3.1.2) as 8-bit RGB.
func renderColor(ds *dataset, s *samples) (*image.NRGBA, error) {
	img := image.NewNRGBA(image.Rect(0, 0, s.width, s.height))
	n := s.width * s.height
	bits := s.bitsStored
	if s.photometric == "PALETTE COLOR" {
		return img, renderPalette(ds, s, img)
	}
	if s.spp != 3 || len(s.pix) < 3*n {
		return nil, fmt.Errorf("%w: %s with %d samples per pixel", ErrCorrupt, s.photometric, s.spp)
	}
	// Signed colour samples are rare; show them offset to unsigned.
	var off int64
	if s.signed {
		off = 1 << uint(bits-1)
	}
	switch s.photometric {
	case "RGB", "YBR_ICT", "YBR_RCT":
		// JPEG 2000 codecs undo ICT/RCT themselves, leaving RGB.
		for i := 0; i < n; i++ {
			p := img.Pix[4*i : 4*i+4]
			p[0] = clamp8(to8(s.pix[3*i]+off, bits))
			p[1] = clamp8(to8(s.pix[3*i+1]+off, bits))
			p[2] = clamp8(to8(s.pix[3*i+2]+off, bits))
			p[3] = 255
		}
	case "YBR_FULL", "YBR_FULL_422":
		for i := 0; i < n; i++ {
			y := to8(s.pix[3*i]+off, bits)
			cb := to8(s.pix[3*i+1]+off, bits) - 128
			cr := to8(s.pix[3*i+2]+off, bits) - 128
			p := img.Pix[4*i : 4*i+4]
			p[0] = clamp8(y + 1.402*cr)
			p[1] = clamp8(y - 0.344136*cb - 0.714136*cr)
			p[2] = clamp8(y + 1.772*cb)
			p[3] = 255
		}
	case "YBR_PARTIAL_422", "YBR_PARTIAL_420":
		for i := 0; i < n; i++ {
			y := 1.1644 * (to8(s.pix[3*i]+off, bits) - 16)
			cb := to8(s.pix[3*i+1]+off, bits) - 128
			cr := to8(s.pix[3*i+2]+off, bits) - 128
			p := img.Pix[4*i : 4*i+4]
			p[0] = clamp8(y + 1.5960*cr)
			p[1] = clamp8(y - 0.3918*cb - 0.8130*cr)
			p[2] = clamp8(y + 2.0172*cb)
			p[3] = 255
		}
	default:
		return nil, fmt.Errorf("%w: photometric interpretation %q", ErrUnsupported, s.photometric)
	}
	return img, nil
}

// renderPalette maps stored values through the Red, Green and Blue Palette
// Color Lookup Tables (PS3.3 C.7.6.3.1.5), normal or segmented (C.7.9.2).
func renderPalette(ds *dataset, s *samples, img *image.NRGBA) error {
	var luts [3]*lut
	descs := [3]uint32{tagRedDescriptor, tagGreenDescriptor, tagBlueDescriptor}
	datas := [3]uint32{tagRedData, tagGreenData, tagBlueData}
	segs := [3]uint32{tagSegRedData, tagSegGreenData, tagSegBlueData}
	for c := range luts {
		var err error
		if ds.has(segs[c]) && !ds.has(datas[c]) {
			luts[c], err = parseSegmentedLUT(ds, descs[c], segs[c], s.signed)
		} else {
			luts[c], err = parseLUT(ds, descs[c], datas[c], s.signed)
		}
		if err != nil {
			return fmt.Errorf("palette: %w", err)
		}
	}
	// Tables of every value a palette can index would be 64K entries;
	// map through them directly.
	for i, v := range s.pix[:s.width*s.height] {
		p := img.Pix[4*i : 4*i+4]
		for c, l := range luts {
			e := l.lookup(v)
			if l.bits > 8 {
				p[c] = uint8(e >> 8)
			} else {
				p[c] = uint8(e)
			}
		}
		p[3] = 255
	}
	return nil
}

// maxSegmentedEntries bounds the expansion of a segmented palette, whose
// linear segments could otherwise ask for any number of entries.
const maxSegmentedEntries = 65536

// parseSegmentedLUT expands Segmented Palette Color Lookup Table Data
// (PS3.3 C.7.9.2): discrete (opcode 0), linear (1) and indirect (2)
// segments.
func parseSegmentedLUT(ds *dataset, descTag, dataTag uint32, signed bool) (*lut, error) {
	// The descriptor's entry count is not needed: the segments say how
	// many entries they expand to.
	_, first, bits, err := lutDescriptor(ds, descTag, signed)
	if err != nil {
		return nil, err
	}
	words := ds.words(dataTag)
	var out []uint16
	if err := expandSegments(words, words, -1, &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty segmented LUT", ErrCorrupt)
	}
	return &lut{first: first, bits: bits, data: out}, nil
}

// expandSegments expands count segments of w (all of them when count is
// negative) onto out. Indirect segments replay segments found at a byte
// offset into all, and may not themselves be indirect.
func expandSegments(all, w []uint16, count int, out *[]uint16) error {
	i := 0
	for s := 0; count < 0 && i < len(w) || s < count; s++ {
		if i+1 >= len(w) {
			return fmt.Errorf("%w: segmented LUT ends inside a segment", ErrCorrupt)
		}
		op, n := w[i], int(w[i+1])
		switch op {
		case 0:
			if i+2+n > len(w) || len(*out)+n > maxSegmentedEntries {
				return fmt.Errorf("%w: discrete segment of %d entries overruns the data", ErrCorrupt, n)
			}
			*out = append(*out, w[i+2:i+2+n]...)
			i += 2 + n
		case 1:
			if i+2 >= len(w) || len(*out) == 0 || len(*out)+n > maxSegmentedEntries {
				return fmt.Errorf("%w: bad linear segment", ErrCorrupt)
			}
			y0, y1 := float64((*out)[len(*out)-1]), float64(w[i+2])
			for k := 1; k <= n; k++ {
				*out = append(*out, uint16(math.Round(y0+(y1-y0)*float64(k)/float64(n))))
			}
			i += 3
		case 2:
			if count >= 0 || i+3 >= len(w) {
				return fmt.Errorf("%w: bad indirect segment", ErrCorrupt)
			}
			// The offset is a 32-bit byte offset into the data, least
			// significant word first.
			start := (int(w[i+2]) | int(w[i+3])<<16) / 2
			if start >= len(all) {
				return fmt.Errorf("%w: indirect segment offset out of range", ErrCorrupt)
			}
			if err := expandSegments(all, all[start:], n, out); err != nil {
				return err
			}
			i += 4
		default:
			return fmt.Errorf("%w: unknown segment opcode %d", ErrCorrupt, op)
		}
	}
	return nil
}
