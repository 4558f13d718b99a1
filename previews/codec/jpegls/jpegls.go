// Package jpegls decodes JPEG-LS images as defined by ITU-T T.87 | ISO/IEC
// 14495-1 (the codec behind DICOM transfer syntaxes 1.2.840.10008.1.2.4.80
// and .81).
//
// The decoder handles lossless and near-lossless (NEAR > 0) coding, regular
// and run mode, all three interleave modes (none, line, sample), default and
// custom (LSE id 1) preset coding parameters, sample precisions of 2 to 16
// bits and restart markers. Mapping tables (palettised images, LSE id 2/3),
// oversize dimensions (LSE id 4), point transforms, component subsampling and
// the HP colour transforms (APP8 "mrfx") are reported as ErrUnsupported.
//
// Every input is treated as hostile: lengths are checked before they are
// used, the output size is bounded by MaxSamples and by what the compressed
// size can plausibly encode, and malformed streams yield ErrCorrupt.
package jpegls

import (
	"errors"
	"fmt"
)

// ErrUnsupported reports a valid JPEG-LS stream that uses a feature this
// decoder does not implement.
var ErrUnsupported = errors.New("jpegls: unsupported feature")

// ErrCorrupt reports a stream that is not well-formed JPEG-LS.
var ErrCorrupt = errors.New("jpegls: corrupt data")

// MaxSamples bounds Width×Height×Components of a decoded image (128 MiB of
// 16-bit samples, above any single DICOM frame in practice), so hostile
// headers cannot make Decode allocate without limit.
const MaxSamples = 1 << 26

// Image is a decoded JPEG-LS frame.
type Image struct {
	// Width and Height are the frame dimensions in samples.
	Width, Height int
	// Components is the number of colour components (1 for grey, 3 for RGB).
	Components int
	// Precision is the sample precision P in bits (2–16).
	Precision int
	// Pix holds the samples row-major with components interleaved
	// (for RGB: R,G,B of pixel 0, then pixel 1, …), values as coded.
	Pix []uint16
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

// Markers used by T.87 (Table C.1) and the JPEG markers it shares.
const (
	markerSOI   = 0xD8
	markerEOI   = 0xD9
	markerSOS   = 0xDA
	markerDNL   = 0xDC
	markerDRI   = 0xDD
	markerSOF55 = 0xF7
	markerLSE   = 0xF8
	markerRST0  = 0xD0
	markerRST7  = 0xD7
	markerAPP8  = 0xE8
)

// component is one frame component from SOF55.
type component struct {
	id byte
}

// presets are the coding parameters of C.2.4.1.1 (LSE id 1); zero means
// "use the default".
type presets struct {
	maxVal, t1, t2, t3, reset int
}

type decoder struct {
	data       []byte
	pos        int
	img        *Image
	comps      []component
	decoded    []bool
	preset     presets
	restart    int
	frameSeen  bool
	scansCount int
}

// Decode decodes one JPEG-LS image (SOI … EOI) held in data.
func Decode(data []byte) (*Image, error) {
	d := &decoder{data: data}
	return d.decode()
}

func (d *decoder) u16() (int, error) {
	if d.pos+2 > len(d.data) {
		return 0, corruptf("unexpected end of data at offset %d", d.pos)
	}
	v := int(d.data[d.pos])<<8 | int(d.data[d.pos+1])
	d.pos += 2
	return v, nil
}

// nextMarker skips fill bytes (0xFF) and returns the marker code.
func (d *decoder) nextMarker() (byte, error) {
	if d.pos >= len(d.data) || d.data[d.pos] != 0xFF {
		return 0, corruptf("expected marker at offset %d", d.pos)
	}
	for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
		d.pos++
	}
	if d.pos >= len(d.data) {
		return 0, corruptf("truncated marker")
	}
	m := d.data[d.pos]
	d.pos++
	return m, nil
}

// segment returns the payload of a marker segment whose length field starts
// at d.pos and advances past it.
func (d *decoder) segment() ([]byte, error) {
	n, err := d.u16()
	if err != nil {
		return nil, err
	}
	if n < 2 || d.pos+n-2 > len(d.data) {
		return nil, corruptf("marker segment length %d exceeds data", n)
	}
	seg := d.data[d.pos : d.pos+n-2]
	d.pos += n - 2
	return seg, nil
}

func (d *decoder) decode() (*Image, error) {
	m, err := d.nextMarker()
	if err != nil {
		return nil, err
	}
	if m != markerSOI {
		return nil, corruptf("missing SOI")
	}
	for {
		m, err := d.nextMarker()
		if err != nil {
			return nil, err
		}
		switch {
		case m == markerEOI:
			return d.finish()
		case m == markerSOF55:
			seg, err := d.segment()
			if err != nil {
				return nil, err
			}
			if err := d.parseSOF(seg); err != nil {
				return nil, err
			}
		case m == markerLSE:
			seg, err := d.segment()
			if err != nil {
				return nil, err
			}
			if err := d.parseLSE(seg); err != nil {
				return nil, err
			}
		case m == markerDRI:
			seg, err := d.segment()
			if err != nil {
				return nil, err
			}
			switch len(seg) {
			case 2:
				d.restart = int(seg[0])<<8 | int(seg[1])
			case 3:
				d.restart = int(seg[0])<<16 | int(seg[1])<<8 | int(seg[2])
			case 4:
				d.restart = int(seg[0])<<24 | int(seg[1])<<16 | int(seg[2])<<8 | int(seg[3])
			default:
				return nil, corruptf("DRI length %d", len(seg))
			}
		case m == markerSOS:
			seg, err := d.segment()
			if err != nil {
				return nil, err
			}
			if err := d.scan(seg); err != nil {
				return nil, err
			}
		case m == markerAPP8:
			seg, err := d.segment()
			if err != nil {
				return nil, err
			}
			// HP's colour transform marker: "mrfx" followed by the transform id.
			if len(seg) >= 5 && string(seg[:4]) == "mrfx" && seg[4] != 0 {
				return nil, unsupportedf("HP colour transform %d", seg[4])
			}
		case m >= 0xE0 && m <= 0xEF, m == 0xFE:
			if _, err := d.segment(); err != nil {
				return nil, err
			}
		case m == markerDNL:
			return nil, unsupportedf("DNL marker")
		case m >= 0xC0 && m <= 0xCF, m == 0xF9:
			return nil, unsupportedf("frame type 0x%02X is not JPEG-LS", m)
		default:
			return nil, corruptf("unexpected marker 0x%02X", m)
		}
	}
}

func (d *decoder) finish() (*Image, error) {
	if !d.frameSeen {
		return nil, corruptf("no frame header")
	}
	for i, ok := range d.decoded {
		if !ok {
			return nil, corruptf("component %d has no scan", i)
		}
	}
	return d.img, nil
}

func (d *decoder) parseSOF(seg []byte) error {
	if d.frameSeen {
		return corruptf("second frame header")
	}
	if len(seg) < 6 {
		return corruptf("SOF55 too short")
	}
	p := int(seg[0])
	h := int(seg[1])<<8 | int(seg[2])
	w := int(seg[3])<<8 | int(seg[4])
	nf := int(seg[5])
	if p < 2 || p > 16 {
		return corruptf("sample precision %d", p)
	}
	if nf < 1 || len(seg) != 6+3*nf {
		return corruptf("SOF55 with %d components and length %d", nf, len(seg))
	}
	if h == 0 {
		return unsupportedf("height defined by DNL")
	}
	if w == 0 {
		return unsupportedf("width 0 (LSE oversize dimensions)")
	}
	total := w * h * nf
	if total > MaxSamples {
		return unsupportedf("%d×%d×%d samples exceed limit %d", w, h, nf, MaxSamples)
	}
	// Every coded line takes at least one bit (a run reaching the end of
	// the line still costs one), so the height is bounded by the data.
	if h > 8*len(d.data) {
		return corruptf("%d lines cannot be coded in %d bytes", h, len(d.data))
	}
	d.comps = make([]component, nf)
	for i := range nf {
		c := seg[6+3*i:]
		if c[1] != 0x11 {
			return unsupportedf("component subsampling H/V 0x%02X", c[1])
		}
		for j := range i {
			if d.comps[j].id == c[0] {
				return corruptf("duplicate component id %d", c[0])
			}
		}
		d.comps[i] = component{id: c[0]}
	}
	d.decoded = make([]bool, nf)
	d.img = &Image{Width: w, Height: h, Components: nf, Precision: p, Pix: make([]uint16, total)}
	d.frameSeen = true
	return nil
}

func (d *decoder) parseLSE(seg []byte) error {
	if len(seg) < 1 {
		return corruptf("empty LSE")
	}
	switch seg[0] {
	case 1:
		if len(seg) != 11 {
			return corruptf("LSE preset parameters length %d", len(seg))
		}
		v := func(i int) int { return int(seg[i])<<8 | int(seg[i+1]) }
		d.preset = presets{maxVal: v(1), t1: v(3), t2: v(5), t3: v(7), reset: v(9)}
		return nil
	case 2, 3:
		return unsupportedf("mapping table (LSE id %d)", seg[0])
	case 4:
		return unsupportedf("oversize image dimensions (LSE id 4)")
	default:
		return corruptf("LSE id %d", seg[0])
	}
}
