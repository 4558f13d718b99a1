package previews

import (
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"

	"github.com/disintegration/imaging"
)

// Options configures rendering. The zero value of a field means its default
// (see DefaultOptions).
type Options struct {
	// PreviewSize is the longest side of a series or study preview.
	PreviewSize int
	// ThumbnailSize is the longest side of an image's image-preview.
	ThumbnailSize int
	// Quality is the JPEG quality, 1 to 100.
	Quality int
	// Filter is the resampling filter imaging uses when shrinking colour
	// images (zero means imaging.Linear). Grayscale images are shrunk by
	// area averaging without leaving their one-channel form.
	Filter imaging.ResampleFilter
	// MaxPixels bounds Rows*Columns of an image that will be decoded.
	MaxPixels int64
	// MaxFrameBytes bounds the bytes of the one frame that is read.
	MaxFrameBytes int64
}

// Defaults used for zero Options fields.
const (
	DefaultPreviewSize   = 1024
	DefaultThumbnailSize = 256
	DefaultQuality       = 85
	DefaultMaxPixels     = 16384 * 16384
	DefaultMaxFrameBytes = 1 << 30
)

// DefaultOptions returns the options used for zero fields.
func DefaultOptions() Options {
	return Options{
		PreviewSize:   DefaultPreviewSize,
		ThumbnailSize: DefaultThumbnailSize,
		Quality:       DefaultQuality,
		Filter:        imaging.Linear,
		MaxPixels:     DefaultMaxPixels,
		MaxFrameBytes: DefaultMaxFrameBytes,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.PreviewSize <= 0 {
		o.PreviewSize = d.PreviewSize
	}
	if o.ThumbnailSize <= 0 {
		o.ThumbnailSize = d.ThumbnailSize
	}
	if o.Quality <= 0 || o.Quality > 100 {
		o.Quality = d.Quality
	}
	if o.Filter.Kernel == nil && o.Filter.Support == 0 {
		o.Filter = d.Filter
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = d.MaxPixels
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = d.MaxFrameBytes
	}
	return o
}

// Rendered is one decoded and windowed frame, ready to be encoded at any
// size. One Rendered serves both the preview and the thumbnail.
type Rendered struct {
	// Image is the frame at full resolution after the pixel pipeline:
	// *image.Gray for grayscale, *image.NRGBA for colour.
	Image image.Image
	// Frame is the zero-based index of the rendered frame and Frames the
	// instance's frame count; the middle frame represents the instance.
	Frame, Frames int
	// DisplayWidth and DisplayHeight are the full-resolution size with the
	// pixel aspect ratio applied by shrinking the finer-sampled axis, so the
	// image is never stretched beyond its stored resolution.
	DisplayWidth, DisplayHeight int

	opts Options
	voi  string // VOI transformation used (grayscale only), for tests
}

// Render decodes the middle frame of the DICOM instance in r (size bytes)
// and runs it through the pixel pipeline. It reads the header and then
// only the bytes of that frame.
func Render(r io.ReaderAt, size int64, opts Options) (*Rendered, error) {
	opts = opts.withDefaults()
	h, _, err := readHeader(r, size)
	if err != nil {
		return nil, err
	}
	s := openDataset(r, size, h)
	ds, loc, err := parseDataset(s, h)
	if err != nil {
		return nil, err
	}
	if ds.has(tagFloatPixelData) || ds.has(tagDoublePixelData) {
		return nil, fmt.Errorf("%w: float pixel data", ErrUnsupported)
	}
	if loc == nil {
		return nil, ErrNoPixelData
	}
	if !ds.has(tagRows) && !ds.has(tagColumns) {
		return nil, fmt.Errorf("%w: pixel data without Rows and Columns", ErrCorrupt)
	}
	in, err := imageInfoFrom(ds, h, &opts)
	if err != nil {
		return nil, err
	}
	if loc.length == 0 {
		return nil, fmt.Errorf("%w: empty pixel data", ErrCorrupt)
	}
	idx := in.frames / 2
	src := &source{r: r, size: size, h: h}
	var raw *rawFrame
	if loc.length == undefinedLength {
		dec, ok := decoders()[in.transfer]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnsupportedTransferSyntax, in.transfer)
		}
		data, err := readEncapsulatedFrame(src, s, ds, in, idx, &opts)
		if err != nil {
			return nil, err
		}
		raw, err = dec(data, in)
		if err != nil {
			return nil, err
		}
	} else {
		switch in.transfer {
		case tsImplicitLE, tsExplicitLE, tsExplicitBE, tsDeflatedLE:
		default:
			return nil, fmt.Errorf("%w: %s with native pixel data", ErrCorrupt, in.transfer)
		}
		raw, err = readNativeFrame(src, loc, in, idx, &opts)
		if err != nil {
			return nil, err
		}
	}
	out := &Rendered{Frame: idx, Frames: in.frames, opts: opts}
	mono := in.photometric == "MONOCHROME1" || in.photometric == "MONOCHROME2"
	if mono && raw.native != nil && (in.bitsAllocated == 8 || in.bitsAllocated == 16) {
		out.Image, out.voi, err = renderGrayNative(ds, raw, in)
	} else {
		var smp *samples
		smp, err = toSamples(raw, in)
		if err != nil {
			return nil, err
		}
		if smp.spp == 1 && smp.photometric != "PALETTE COLOR" {
			out.Image, out.voi, err = renderGray(ds, smp)
		} else {
			out.Image, err = renderColor(ds, smp)
		}
	}
	if err != nil {
		return nil, err
	}
	out.DisplayWidth, out.DisplayHeight = displaySize(ds, in.cols, in.rows)
	return out, nil
}

// RenderFile renders the DICOM file at path.
func RenderFile(path string, opts Options) (*Rendered, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Render(f, st.Size(), opts)
}

// displaySize applies Pixel Spacing (0028,0030) or Pixel Aspect Ratio
// (0028,0034), both given as vertical\horizontal, by shrinking the axis
// that is sampled more finely.
func displaySize(ds *dataset, cols, rows int) (int, int) {
	ratio := func(tag uint32) (float64, bool) {
		v := ds.strs(tag)
		if len(v) != 2 {
			return 0, false
		}
		vert, ok1 := parseDS(v[0])
		horiz, ok2 := parseDS(v[1])
		if !ok1 || !ok2 || vert <= 0 || horiz <= 0 {
			return 0, false
		}
		return vert / horiz, true
	}
	r, ok := ratio(tagPixelSpacing)
	if !ok {
		r, ok = ratio(tagPixelAspectRatio)
	}
	// Ratios within 1% of square, or absurd ones, are left alone.
	if !ok || math.Abs(r-1) < 0.01 || r > 100 || r < 0.01 {
		return cols, rows
	}
	if r > 1 {
		// Pixels are taller than wide: shrink the width.
		return max(1, int(math.Round(float64(cols)/r))), rows
	}
	return cols, max(1, int(math.Round(float64(rows)*r)))
}

// Size returns the size of the image shrunk so its longest side is at most
// maxSide (never enlarged), keeping the display aspect.
func (r *Rendered) Size(maxSide int) (int, int) {
	w, h := r.DisplayWidth, r.DisplayHeight
	if maxSide <= 0 || (w <= maxSide && h <= maxSide) {
		return w, h
	}
	if w >= h {
		return maxSide, max(1, int(math.Round(float64(h)*float64(maxSide)/float64(w))))
	}
	return max(1, int(math.Round(float64(w)*float64(maxSide)/float64(h)))), maxSide
}

// Resize returns the image at Size(maxSide), never enlarged. Grayscale
// stays *image.Gray (area averaging); colour is resampled with imaging into
// *image.NRGBA.
func (r *Rendered) Resize(maxSide int) image.Image {
	w, h := r.Size(maxSide)
	b := r.Image.Bounds()
	if w == b.Dx() && h == b.Dy() {
		return r.Image
	}
	if g, ok := r.Image.(*image.Gray); ok {
		return shrinkGray(g, w, h)
	}
	return imaging.Resize(r.Image, w, h, r.opts.Filter)
}

// EncodeJPEG writes the image, shrunk to at most maxSide, as a JPEG.
func (r *Rendered) EncodeJPEG(w io.Writer, maxSide int) error {
	img := r.Resize(maxSide)
	if g, ok := img.(*image.Gray); ok {
		return encodeGrayJPEG(w, g, r.opts.Quality)
	}
	return jpeg.Encode(w, img, &jpeg.Options{Quality: r.opts.Quality})
}

// WritePreview writes the series/study preview (Options.PreviewSize).
func (r *Rendered) WritePreview(w io.Writer) error {
	return r.EncodeJPEG(w, r.opts.PreviewSize)
}

// WriteThumbnail writes the image's image-preview (Options.ThumbnailSize).
func (r *Rendered) WriteThumbnail(w io.Writer) error {
	return r.EncodeJPEG(w, r.opts.ThumbnailSize)
}

// RenderJPEG renders the DICOM file at path and writes it as a JPEG whose
// longest side is at most maxSide.
func RenderJPEG(path string, w io.Writer, maxSide int, opts Options) error {
	r, err := RenderFile(path, opts)
	if err != nil {
		return err
	}
	return r.EncodeJPEG(w, maxSide)
}
