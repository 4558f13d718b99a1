// Package jpeg decodes the JPEG processes DICOM uses for encapsulated pixel
// data (PS3.5 Section 8.2.1 and A.4.1), implemented from ITU-T T.81 | ISO/IEC
// 10918-1:
//
//   - baseline sequential DCT, 8-bit (SOF0, Process 1, 1.2.840.10008.1.2.4.50);
//   - extended sequential DCT, Huffman, 8 and 12-bit (SOF1, Process 2 and 4,
//     1.2.840.10008.1.2.4.51);
//   - progressive DCT, Huffman, 8 and 12-bit (SOF2, Process 10/12, retired
//     1.2.840.10008.1.2.4.55);
//   - lossless, Huffman, 2..16-bit, every predictor (selection value 1..7)
//     and point transform (SOF3, Process 14, 1.2.840.10008.1.2.4.57 and the
//     selection-value-1 variant 1.2.840.10008.1.2.4.70).
//
// Arithmetic coding (SOF9..SOF15, DAC) and the hierarchical processes (SOF5..7,
// DHP, EXP) report ErrUnsupported; a frame whose height is only given by a
// DNL marker too. Damaged or hostile input reports an error wrapping
// ErrCorrupt; the decoder never panics and checks the frame size against
// MaxSamples and against what the compressed data could possibly describe
// before it allocates.
//
// Samples are returned exactly as coded: no colour conversion is done (a
// YCbCr-coded frame stays YCbCr, as DCMTK's "dcmdjpeg +cn" leaves it).
// Components coded at a lower resolution are brought to full size: for the
// DCT processes with 2:1 horizontal (4:2:2) or 2:1 horizontal and vertical
// (4:2:0) ratios by the triangle ("fancy") filter libjpeg, and therefore DCMTK,
// uses by default — each output sample is 3/4 of the nearest input sample plus
// 1/4 of the next nearest, edges replicated; for every other ratio, and for
// the lossless process, by sample replication. The IDCT is a separable
// floating-point transform with round-to-nearest; it differs from libjpeg's
// integer IDCT by at most one or two levels in rare samples.
package jpeg

import (
	"errors"
	"fmt"
)

// MaxSamples bounds Width*Height*Components of a frame the decoder accepts.
// It keeps a hostile header from making the decoder allocate more than
// 512 MiB of output (the samples are uint16).
const MaxSamples = 1 << 28

var (
	// ErrUnsupported reports a valid JPEG feature the decoder does not
	// implement (arithmetic coding, hierarchical mode, DNL, JPEG-LS, …).
	ErrUnsupported = errors.New("jpeg: unsupported feature")
	// ErrCorrupt reports a bitstream that violates T.81 or ends early; the
	// wrapping error says where.
	ErrCorrupt = errors.New("jpeg: corrupt data")
)

// Image is a decoded JPEG frame.
type Image struct {
	// Width and Height are the frame size in samples (the SOF's X and Y).
	Width, Height int
	// Components is the number of colour components (1..4).
	Components int
	// Precision is the sample precision P in bits from the SOF (8 or 12
	// for the DCT processes, 2..16 for lossless).
	Precision int
	// Pix holds the samples interleaved (component fastest), row-major:
	// Pix[(y*Width+x)*Components+c]. len(Pix) == Width*Height*Components.
	Pix []uint16
	// Colour is what the stream's own markers say its components are;
	// the decoder does not act on it.
	Colour Colour
}

// Colour is what a JPEG stream's markers, before its first scan, say its
// three components are (PS3.5 8.2.1 defers to them): an Adobe APP14 marker
// says so explicitly, component ids 'R','G','B' mean RGB, and failing both
// a JFIF APP0 marker means YCbCr. The first explicit statement in the
// stream wins.
type Colour int

// Colours a stream can state.
const (
	// ColourUnstated means no marker says what the components are.
	ColourUnstated Colour = iota
	// ColourRGB means the components are R, G and B.
	ColourRGB
	// ColourYCbCr means the components are Y, Cb and Cr (or, with an
	// Adobe transform of 2, YCCK).
	ColourYCbCr
)

// Config is what the frame header (SOF) says about a JPEG frame.
type Config struct {
	// Width and Height are the frame size in samples.
	Width, Height int
	// Components is the number of colour components.
	Components int
	// Precision is the sample precision in bits.
	Precision int
	// Process names the SOF marker: 0 baseline, 1 extended sequential,
	// 2 progressive, 3 lossless (the low nibble of the SOFn marker).
	Process int
}

// Lossless reports whether the frame uses the lossless process (SOF3).
func (c Config) Lossless() bool { return c.Process == 3 }

// Decode decodes one frame's complete JPEG bitstream (SOI through EOI), as
// found in the concatenated fragments of a DICOM frame.
func Decode(data []byte) (*Image, error) {
	d := &decoder{data: data}
	if err := d.decode(false); err != nil {
		return nil, err
	}
	return d.image()
}

// DecodeConfig reads the markers up to and including the frame header and
// returns what it says, without decoding any entropy-coded data.
func DecodeConfig(data []byte) (Config, error) {
	d := &decoder{data: data}
	if err := d.decode(true); err != nil {
		return Config{}, err
	}
	return d.config(), nil
}

// corrupt returns an error wrapping ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// unsupported returns an error wrapping ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}
