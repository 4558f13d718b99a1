package previews

import (
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
	f, err := fromCodec(codecImage{Width: img.Width, Height: img.Height, Components: img.Components, Precision: img.Precision, Pix: img.Pix, Signed: img.Signed}, in)
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
	f, err := fromCodec(codecImage{Width: img.Width, Height: img.Height, Components: img.Components, Precision: img.Precision, Pix: img.Pix}, in)
	if err != nil {
		return nil, err
	}
	if img.Components == 3 {
		f.photometric = jpegPhotometric(img.Colour, in.photometric)
	}
	return f, nil
}

func decodeJPEGLS(data []byte, in *imageInfo) (*rawFrame, error) {
	img, err := jpegls.Decode(data)
	if err != nil {
		return nil, codecError(in, err, jpegls.ErrUnsupported)
	}
	// JPEG-LS has no colour transform of its own in DICOM (PS3.5 8.2.3).
	return fromCodec(codecImage{Width: img.Width, Height: img.Height, Components: img.Components, Precision: img.Precision, Pix: img.Pix}, in)
}

// fromCodec wraps a codec's output after checking it against the header.
func fromCodec(img codecImage, in *imageInfo) (*rawFrame, error) {
	if img.Width != in.cols || img.Height != in.rows {
		return nil, fmt.Errorf("%w: frame is %dx%d, header says %dx%d", ErrCorrupt, img.Width, img.Height, in.cols, in.rows)
	}
	if img.Components != in.spp {
		return nil, fmt.Errorf("%w: frame has %d components, header says %d samples per pixel", ErrCorrupt, img.Components, in.spp)
	}
	if len(img.Pix) < img.Width*img.Height*img.Components {
		return nil, fmt.Errorf("%w: codec returned %d samples for %dx%dx%d", ErrCorrupt, len(img.Pix), img.Width, img.Height, img.Components)
	}
	return &rawFrame{samples: img.Pix, width: img.Width, height: img.Height, spp: img.Components, precision: img.Precision, signed: img.Signed}, nil
}

// jpegPhotometric decides what the three components of a JPEG stream are
// (PS3.5 8.2.1): what the stream's markers say (jpeg.Colour), else the data
// set's photometric interpretation. It returns "YBR_FULL" or "RGB".
func jpegPhotometric(c jpeg.Colour, photometric string) string {
	switch {
	case c == jpeg.ColourRGB:
		return "RGB"
	case c == jpeg.ColourYCbCr:
		return "YBR_FULL"
	case photometric == "RGB":
		return "RGB"
	}
	return "YBR_FULL"
}
