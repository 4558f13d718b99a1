package previews

import (
	"bytes"
	"errors"
	"fmt"

	"dicomgate/previews/codec/jpeg"
	"dicomgate/previews/codec/jpeg2000"
	"dicomgate/previews/codec/jpegls"
	"dicomgate/previews/codec/rle"
)

// frameDecoder decodes one encapsulated frame (all its fragments joined)
// into a rawFrame.
type frameDecoder func(data []byte, in *imageInfo) (*rawFrame, error)

// codecImage is the shape the compressed-pixel codecs under previews/codec
// return: interleaved samples, row-major, values as coded.
type codecImage struct {
	Width, Height, Components, Precision int
	Pix                                  []uint16
	Signed                               bool
}

// decoders maps each encapsulated transfer syntax to its frame decoder.
// Wiring in a codec is one line here; transfer syntaxes missing from the map
// fail with ErrUnsupportedTransferSyntax.
func decoders() map[string]frameDecoder {
	return map[string]frameDecoder{
		tsJPEGBaseline:    decodeJPEG,
		tsJPEGExtended:    decodeJPEG,
		tsJPEGLossless:    decodeJPEG,
		tsJPEGLosslessSV1: decodeJPEG,
		tsJPEGLSLossless:  decodeJPEGLS,
		tsJPEGLSNear:      decodeJPEGLS,
		tsRLE:             decodeRLE,
		tsJPEG2000Lossles: decodeJPEG2000,
		tsJPEG2000:        decodeJPEG2000,
	}
}

// decodeJPEG2000 decodes a JPEG 2000 frame. The codec undoes the
// codestream's multiple component transform itself, so three components
// come out as RGB whatever YBR_ICT/YBR_RCT the data set names.
func decodeJPEG2000(data []byte, in *imageInfo) (*rawFrame, error) {
	img, err := jpeg2000.Decode(data)
	if err != nil {
		return nil, codecError(in, err, jpeg2000.ErrUnsupported)
	}
	f, err := fromCodec(codecImage{Width: img.Width, Height: img.Height, Components: img.Components, Precision: img.Precision, Pix: img.Pix, Signed: img.Signed}, in, nil)
	if err != nil {
		return nil, err
	}
	if img.Components == 3 && (in.photometric == "YBR_ICT" || in.photometric == "YBR_RCT") {
		f.photometric = "RGB"
	}
	return f, nil
}

// decodeRLE decodes an RLE Lossless frame (PS3.5 Annex G) into native
// little-endian bytes, colour-by-plane whatever Planar Configuration says
// (G.2: RLE segments are always planes).
func decodeRLE(data []byte, in *imageInfo) (*rawFrame, error) {
	b, err := rle.Decode(data, in.rows, in.cols, in.spp, in.bitsAllocated)
	if err != nil {
		return nil, codecError(in, err, rle.ErrUnsupported)
	}
	return &rawFrame{native: b, planar: in.spp > 1}, nil
}

// codecError classifies a codec's error: features it does not implement
// are unsupported, anything else is a damaged frame.
func codecError(in *imageInfo, err, unsupported error) error {
	if errors.Is(err, unsupported) {
		return fmt.Errorf("%w: %s: %w", ErrUnsupportedTransferSyntax, in.transfer, err)
	}
	return fmt.Errorf("%w: frame: %w", ErrCorrupt, err)
}

func decodeJPEG(data []byte, in *imageInfo) (*rawFrame, error) {
	img, err := jpeg.Decode(data)
	if err != nil {
		return nil, codecError(in, err, jpeg.ErrUnsupported)
	}
	return fromCodec(codecImage{Width: img.Width, Height: img.Height, Components: img.Components, Precision: img.Precision, Pix: img.Pix}, in, data)
}

func decodeJPEGLS(data []byte, in *imageInfo) (*rawFrame, error) {
	img, err := jpegls.Decode(data)
	if err != nil {
		return nil, codecError(in, err, jpegls.ErrUnsupported)
	}
	// JPEG-LS has no colour transform of its own in DICOM (PS3.5 8.2.3).
	return fromCodec(codecImage{Width: img.Width, Height: img.Height, Components: img.Components, Precision: img.Precision, Pix: img.Pix}, in, nil)
}

// fromCodec wraps a codec's output, deciding for JPEG streams whether the
// components are YCbCr by the stream's own markers.
func fromCodec(img codecImage, in *imageInfo, jpegStream []byte) (*rawFrame, error) {
	if img.Width != in.cols || img.Height != in.rows {
		return nil, fmt.Errorf("%w: frame is %dx%d, header says %dx%d", ErrCorrupt, img.Width, img.Height, in.cols, in.rows)
	}
	if img.Components != in.spp {
		return nil, fmt.Errorf("%w: frame has %d components, header says %d samples per pixel", ErrCorrupt, img.Components, in.spp)
	}
	if len(img.Pix) < img.Width*img.Height*img.Components {
		return nil, fmt.Errorf("%w: codec returned %d samples for %dx%dx%d", ErrCorrupt, len(img.Pix), img.Width, img.Height, img.Components)
	}
	f := &rawFrame{samples: img.Pix, width: img.Width, height: img.Height, spp: img.Components, precision: img.Precision, signed: img.Signed}
	if jpegStream != nil && img.Components == 3 {
		f.photometric = jpegPhotometric(jpegStream, in.photometric)
	}
	return f, nil
}

// jpegPhotometric decides what the three components of a JPEG stream are
// (PS3.5 8.2.1): an Adobe APP14 marker says so explicitly; component ids
// 'R','G','B' mean RGB; a JFIF APP0 marker means YCbCr. Without any of these
// the data set's photometric interpretation is believed. It returns
// "YBR_FULL" or "RGB".
func jpegPhotometric(data []byte, photometric string) string {
	jfif := false
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xFF {
			break
		}
		marker := data[i+1]
		if marker == 0xFF {
			i++
			continue
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		seg := data[i+4 : min(len(data), i+2+n)]
		switch {
		case marker == 0xE0 && bytes.HasPrefix(seg, []byte("JFIF\x00")):
			jfif = true
		case marker == 0xEE && bytes.HasPrefix(seg, []byte("Adobe")) && len(seg) >= 12:
			if seg[11] == 0 {
				return "RGB"
			}
			return "YBR_FULL"
		case marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
			if len(seg) >= 6+3*3 && seg[5] == 3 && seg[6] == 'R' && seg[9] == 'G' && seg[12] == 'B' {
				return "RGB"
			}
		case marker == 0xDA:
			i = len(data)
			continue
		}
		i += 2 + n
	}
	if jfif {
		return "YBR_FULL"
	}
	switch photometric {
	case "RGB":
		return "RGB"
	default:
		return "YBR_FULL"
	}
}
