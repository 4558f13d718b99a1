// Package jpeg2000 decodes JPEG 2000 Part 1 images as defined by ITU-T T.800
// | ISO/IEC 15444-1 (the codec behind DICOM transfer syntaxes
// 1.2.840.10008.1.2.4.90 and .91).
//
// Decode accepts a raw codestream (starting with SOC, 0xFF4F), as DICOM
// stores it, or a JP2 file whose jp2c box holds one. It implements tier-2
// packet parsing for all five progression orders, quality layers, precincts
// and resolution levels, the EBCOT tier-1 decoder (MQ arithmetic decoder,
// significance propagation, magnitude refinement and cleanup passes with
// every Part 1 code-block style: selective arithmetic coding bypass, context
// reset, termination on each pass, vertically causal context, predictable
// termination and segmentation symbols), scalar dequantisation (none,
// derived, expounded), the inverse 5/3 reversible and 9/7 irreversible
// wavelet transforms, the inverse RCT and ICT when COD signals a multiple
// component transform, DC level shifting and multiple tiles and tile-parts.
//
// Reported as ErrUnsupported rather than decoded wrongly: HTJ2K (Part 15),
// component subsampling, region of interest (RGN), progression order
// changes (POC), packed packet headers (PPM/PPT), precisions above 16 bits
// and components of unequal precision or signedness.
//
// Every input is treated as hostile: lengths are checked before use, sizes
// are bounded by MaxSamples and the packet count, and malformed streams yield
// ErrCorrupt.
package jpeg2000

import (
	"errors"
	"fmt"
)

// ErrUnsupported reports a valid JPEG 2000 stream that uses a feature this
// decoder does not implement.
var ErrUnsupported = errors.New("jpeg2000: unsupported feature")

// ErrCorrupt reports a stream that is not well-formed JPEG 2000.
var ErrCorrupt = errors.New("jpeg2000: corrupt data")

// MaxSamples bounds Width×Height×Components of a decoded image (128 MiB of
// 16-bit samples, above any single DICOM frame in practice), so hostile
// headers cannot make Decode allocate without limit.
const MaxSamples = 1 << 26

// maxPackets bounds the packets of one tile (layers × precincts).
const maxPackets = 1 << 22

// Image is a decoded JPEG 2000 image.
type Image struct {
	// Width and Height are the image dimensions in samples.
	Width, Height int
	// Components is the number of components (3 for RGB after the inverse
	// multiple component transform).
	Components int
	// Precision is the sample precision in bits (1–16).
	Precision int
	// Signed reports signed samples; Pix then holds their two's complement
	// 16-bit patterns (uint16(int16(v))).
	Signed bool
	// Pix holds the samples row-major with components interleaved.
	Pix []uint16
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

// Decode decodes a JPEG 2000 codestream or JP2 file held in data.
func Decode(data []byte) (*Image, error) {
	cs, err := codestream(data)
	if err != nil {
		return nil, err
	}
	h, err := parseHeaders(cs)
	if err != nil {
		return nil, err
	}
	return h.decode()
}

// codestream returns the J2K codestream in data, unwrapping a JP2 file.
func codestream(data []byte) ([]byte, error) {
	if len(data) >= 2 && data[0] == 0xFF && data[1] == 0x4F {
		return data, nil
	}
	// JP2 (T.800 Annex I): a sequence of boxes, the codestream in jp2c.
	for pos := 0; pos+8 <= len(data); {
		lbox := uint64(be32(data[pos:]))
		tbox := string(data[pos+4 : pos+8])
		hdr := uint64(8)
		switch lbox {
		case 0:
			lbox = uint64(len(data) - pos)
		case 1:
			if pos+16 > len(data) {
				return nil, corruptf("truncated JP2 box header")
			}
			lbox = uint64(be32(data[pos+8:]))<<32 | uint64(be32(data[pos+12:]))
			hdr = 16
		}
		if lbox < hdr || lbox > uint64(len(data)-pos) {
			return nil, corruptf("JP2 box %q length %d", tbox, lbox)
		}
		if tbox == "jp2c" {
			return data[pos+int(hdr) : pos+int(lbox)], nil
		}
		if pos == 0 && tbox != "jP  " {
			break
		}
		pos += int(lbox)
	}
	return nil, corruptf("neither a J2K codestream nor a JP2 file")
}

func be16(b []byte) int { return int(b[0])<<8 | int(b[1]) }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
