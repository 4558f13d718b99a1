package previews

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	stdjpeg "image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
)

func renderBytes(b []byte) (*Rendered, error) {
	return Render(bytes.NewReader(b), int64(len(b)), Options{})
}

// grayPix returns the pixels of a grayscale render.
func grayPix(t *testing.T, img image.Image) []uint8 {
	t.Helper()
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("rendered %T, want *image.Gray", img)
	}
	return g.Pix
}

func rgbPix(t *testing.T, img image.Image) []color.NRGBA {
	t.Helper()
	m, ok := img.(*image.NRGBA)
	if !ok {
		t.Fatalf("rendered %T, want *image.NRGBA", img)
	}
	var out []color.NRGBA
	for i := 0; i < len(m.Pix); i += 4 {
		out = append(out, color.NRGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3]})
	}
	return out
}

// segLinear is a segmented LUT: one discrete entry of 0, then a linear
// segment to top over 255 steps.
func segLinear(top uint16) []uint16 { return []uint16{0, 1, 0, 1, 255, top} }

func paletteElems(bits uint16, r, g, b []uint16) []el {
	return []el{
		us(tagRedDescriptor, uint16(len(r)%65536), 0, bits),
		us(tagGreenDescriptor, uint16(len(g)%65536), 0, bits),
		us(tagBlueDescriptor, uint16(len(b)%65536), 0, bits),
		ow(tagRedData, r...), ow(tagGreenData, g...), ow(tagBlueData, b...),
	}
}

func lut256(f func(i int) uint16) []uint16 {
	v := make([]uint16, 256)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

// TestPipeline checks the pixel pipeline value by value on small built
// images, one case per photometric interpretation, bit layout and LUT.
// Cases marked dcmtk are also rendered by DCMTK and compared.
func TestPipeline(t *testing.T) {
	mono16 := imageElems(1, 4, 1, 16, 12, 11, 0, "MONOCHROME2")
	ramp12 := words16(0xF000, 0xF000|1365, 0xF000|2730, 0xF000|4095) // garbage in the top 4 bits
	rgb := imageElems(1, 2, 3, 8, 8, 7, 0, "RGB")
	cases := []struct {
		name  string
		file  []byte
		gray  []uint8
		rgb   []color.NRGBA
		dcmtk bool
	}{
		{name: "12 of 16 bits, upper bits masked", file: buildFile(tsExplicitLE, mono16, "OW", ramp12, nil),
			gray: []uint8{0, 85, 170, 255}, dcmtk: true},
		{name: "implicit VR", file: buildFile(tsImplicitLE, mono16, "OW", ramp12, nil),
			gray: []uint8{0, 85, 170, 255}, dcmtk: true},
		{name: "big endian", file: buildFile(tsExplicitBE, mono16, "OW", swap16(ramp12), nil),
			gray: []uint8{0, 85, 170, 255}, dcmtk: true},
		{name: "deflated", file: buildFile(tsDeflatedLE, mono16, "OW", ramp12, nil),
			gray: []uint8{0, 85, 170, 255}, dcmtk: true},
		{name: "MONOCHROME1 inverts", file: buildFile(tsExplicitLE, with(mono16, cs(tagPhotometric, "MONOCHROME1")), "OW", ramp12, nil),
			gray: []uint8{255, 170, 85, 0}, dcmtk: true},
		{name: "signed 12 bits sign-extended", file: buildFile(tsExplicitLE, imageElems(1, 4, 1, 16, 12, 11, 1, "MONOCHROME2"), "OW", words16(0x800, 0xFFF, 0x000, 0x7FF), nil),
			gray: []uint8{0, 127, 128, 255}, dcmtk: true},
		{name: "high bit above bits stored", file: buildFile(tsExplicitLE, imageElems(1, 4, 1, 16, 8, 11, 0, "MONOCHROME2"), "OW", words16(0xF00F, 0x07F5, 0x080A, 0x0FF0), nil),
			gray: []uint8{0, 127, 128, 255}, dcmtk: true},
		{name: "8 bit with LINEAR window", file: buildFile(tsExplicitLE, with(imageElems(1, 3, 1, 8, 8, 7, 0, "MONOCHROME2"), ds(tagWindowCenter, "100"), ds(tagWindowWidth, "101")), "OB", []byte{0, 100, 200}, nil),
			gray: []uint8{0, 129, 255}, dcmtk: true},
		{name: "32 bit signed", file: buildFile(tsExplicitLE, imageElems(1, 3, 1, 32, 32, 31, 1, "MONOCHROME2"), "OW", words32(-100000, 0, 100000), nil),
			gray: []uint8{0, 128, 255}, dcmtk: true},
		{name: "rescale and LINEAR_EXACT", file: buildFile(tsExplicitLE, with(imageElems(1, 3, 1, 16, 16, 15, 0, "MONOCHROME2"),
			ds(tagRescaleSlope, "2"), ds(tagRescaleIntercept, "-1000"), ds(tagWindowCenter, "0"), ds(tagWindowWidth, "2000"), cs(tagVOILUTFunction, "LINEAR_EXACT")), "OW", words16(0, 500, 1000), nil),
			gray: []uint8{0, 128, 255}},
		{name: "SIGMOID", file: buildFile(tsExplicitLE, with(imageElems(1, 1, 1, 16, 16, 15, 0, "MONOCHROME2"),
			ds(tagWindowCenter, "0"), ds(tagWindowWidth, "100"), cs(tagVOILUTFunction, "SIGMOID")), "OW", words16(0), nil),
			gray: []uint8{128}},
		{name: "several windows, first wins", file: buildFile(tsExplicitLE, with(imageElems(1, 3, 1, 8, 8, 7, 0, "MONOCHROME2"), ds(tagWindowCenter, "100\\50"), ds(tagWindowWidth, "101\\20")), "OB", []byte{0, 100, 200}, nil),
			gray: []uint8{0, 129, 255}, dcmtk: true},
		{name: "modality LUT sequence", file: buildFile(tsExplicitLE, with(imageElems(1, 4, 1, 16, 16, 15, 0, "MONOCHROME2"),
			sq(tagModalityLUTSequence, []el{us(tagLUTDescriptor, 4, 0, 16), ow(tagLUTData, 0, 1000, 2000, 4000)})), "OW", words16(0, 1, 2, 3), nil),
			gray: []uint8{0, 64, 128, 255}, dcmtk: true},
		{name: "VOI LUT sequence", file: buildFile(tsExplicitLE, with(imageElems(1, 4, 1, 16, 16, 15, 0, "MONOCHROME2"),
			sq(tagVOILUTSequence, []el{us(tagLUTDescriptor, 4, 0, 8), ow(tagLUTData, 0, 10, 20, 255)})), "OW", words16(0, 1, 2, 3), nil),
			gray: []uint8{0, 10, 20, 255}, dcmtk: true},
		{name: "RGB colour-by-pixel", file: buildFile(tsExplicitLE, rgb, "OB", []byte{255, 0, 0, 0, 0, 255}, nil),
			rgb: []color.NRGBA{{255, 0, 0, 255}, {0, 0, 255, 255}}, dcmtk: true},
		{name: "RGB colour-by-plane", file: buildFile(tsExplicitLE, with(rgb, us(tagPlanarConfiguration, 1)), "OB", []byte{255, 0, 0, 0, 0, 255}, nil),
			rgb: []color.NRGBA{{255, 0, 0, 255}, {0, 0, 255, 255}}, dcmtk: true},
		{name: "RGB 16 bit", file: buildFile(tsExplicitLE, imageElems(1, 1, 3, 16, 16, 15, 0, "RGB"), "OW", words16(65535, 0, 32896), nil),
			rgb: []color.NRGBA{{255, 0, 128, 255}}, dcmtk: true},
		{name: "YBR_FULL", file: buildFile(tsExplicitLE, with(rgb, cs(tagPhotometric, "YBR_FULL")), "OB", []byte{76, 85, 255, 29, 255, 107}, nil),
			rgb: []color.NRGBA{{254, 0, 0, 255}, {0, 0, 255, 255}}, dcmtk: true},
		{name: "YBR_FULL_422", file: buildFile(tsExplicitLE, with(rgb, cs(tagPhotometric, "YBR_FULL_422")), "OB", []byte{50, 200, 128, 128}, nil),
			rgb: []color.NRGBA{{50, 50, 50, 255}, {200, 200, 200, 255}}, dcmtk: true},
		{name: "PALETTE COLOR 16-bit entries", file: buildFile(tsExplicitLE, with(imageElems(1, 2, 1, 8, 8, 7, 0, "PALETTE COLOR"),
			paletteElems(16, lut256(func(i int) uint16 { return uint16(i) << 8 }), lut256(func(i int) uint16 { return uint16(255-i) << 8 }), lut256(func(int) uint16 { return 0 }))...), "OB", []byte{10, 200}, nil),
			rgb: []color.NRGBA{{10, 245, 0, 255}, {200, 55, 0, 255}}, dcmtk: true},
		{name: "PALETTE COLOR segmented", file: buildFile(tsExplicitLE, with(imageElems(1, 3, 1, 8, 8, 7, 0, "PALETTE COLOR"),
			us(tagRedDescriptor, 256, 0, 16), us(tagGreenDescriptor, 256, 0, 16), us(tagBlueDescriptor, 256, 0, 16),
			ow(tagSegRedData, segLinear(65535)...), ow(tagSegGreenData, segLinear(0)...), ow(tagSegBlueData, segLinear(65535)...)), "OB", []byte{0, 128, 255}, nil),
			// DCMTK 3.6.7 does not read segmented palettes: values only.
			rgb: []color.NRGBA{{0, 0, 0, 255}, {128, 0, 128, 255}, {255, 0, 255, 255}}},
		{name: "multi-frame: middle frame", file: buildFile(tsExplicitLE, with(imageElems(1, 2, 1, 8, 8, 7, 0, "MONOCHROME2"),
			is(tagNumberOfFrames, "3"), ds(tagWindowCenter, "128"), ds(tagWindowWidth, "256"), cs(tagVOILUTFunction, "LINEAR_EXACT")), "OB", []byte{10, 10, 20, 20, 30, 30}, nil),
			gray: []uint8{20, 20}},
		{name: "8 bit as OW in big endian (byte pairs swapped)", file: buildFile(tsExplicitBE, with(imageElems(1, 4, 1, 8, 8, 7, 0, "MONOCHROME2"),
			ds(tagWindowCenter, "128"), ds(tagWindowWidth, "256"), cs(tagVOILUTFunction, "LINEAR_EXACT")), "OW", []byte{100, 0, 50, 200}, nil),
			gray: []uint8{0, 100, 199, 50}, dcmtk: true},
		{name: "1 bit allocated", file: buildFile(tsExplicitLE, imageElems(1, 8, 1, 1, 1, 0, 0, "MONOCHROME2"), "OB", []byte{0b10100101, 0}, nil),
			gray: []uint8{255, 0, 255, 0, 0, 255, 0, 255}, dcmtk: true},
	}
	var dcmtk string
	if _, err := exec.LookPath("dcm2pnm"); err == nil {
		dcmtk = "dcm2pnm"
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := renderBytes(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if c.gray != nil {
				if got := grayPix(t, r.Image); !bytes.Equal(got, c.gray) {
					t.Errorf("got %v, want %v", got, c.gray)
				}
			} else {
				got := rgbPix(t, r.Image)
				if len(got) != len(c.rgb) {
					t.Fatalf("got %d pixels, want %d", len(got), len(c.rgb))
				}
				for i := range got {
					if absDiff(got[i].R, c.rgb[i].R) > 1 || absDiff(got[i].G, c.rgb[i].G) > 1 || absDiff(got[i].B, c.rgb[i].B) > 1 {
						t.Errorf("pixel %d: got %v, want %v", i, got[i], c.rgb[i])
					}
				}
			}
			if !c.dcmtk {
				return
			}
			if dcmtk == "" {
				dicomtest.MissingPeer(t, "dcm2pnm (apt-get install dcmtk)")
			}
			path := filepath.Join(t.TempDir(), "case.dcm")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			ref, err := dcmtkReference(t, dcmtk, path, r.Frame, r.voi)
			if err != nil {
				t.Fatal(err)
			}
			p, err := psnr(r.Image, ref)
			if err != nil {
				t.Fatal(err)
			}
			if p < minPSNR {
				t.Errorf("PSNR %.1f dB against DCMTK; DCMTK gave %v", p, ref)
			}
		})
	}
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

// jpegFrame encodes a uniform 16x16 grayscale frame as baseline JPEG.
func jpegFrame(t *testing.T, v uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, img, &stdjpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEncapsulatedFrames checks that the middle frame of encapsulated pixel
// data is found with a Basic Offset Table, an Extended Offset Table, or
// neither, when frames span several fragments.
func TestEncapsulatedFrames(t *testing.T) {
	frames := [][]byte{jpegFrame(t, 50), jpegFrame(t, 100), jpegFrame(t, 150)}
	base := with(imageElems(16, 16, 1, 8, 8, 7, 0, "MONOCHROME2"), is(tagNumberOfFrames, "3"),
		ds(tagWindowCenter, "128"), ds(tagWindowWidth, "256"), cs(tagVOILUTFunction, "LINEAR_EXACT"))
	noBOT := encapsulate(frames, 100, false)
	// Extended Offset Table: offsets of each frame's first item tag.
	var eot, eotLen []byte
	off := 0
	for _, f := range frames {
		eot = binary.LittleEndian.AppendUint64(eot, uint64(off))
		eotLen = binary.LittleEndian.AppendUint64(eotLen, uint64(len(f)))
		for n := len(f); n > 0; n -= 100 {
			off += 8 + (min(n, 100)+1)/2*2
		}
	}
	cases := map[string][]byte{
		"basic offset table":     buildFile(tsJPEGBaseline, base, "", nil, encapsulate(frames, 100, true)),
		"no offset table":        buildFile(tsJPEGBaseline, base, "", nil, noBOT),
		"one fragment per frame": buildFile(tsJPEGBaseline, base, "", nil, encapsulate(frames, 1<<20, false)),
		"extended offset table": buildFile(tsJPEGBaseline, with(base,
			el{tag: tagExtendedOffsetTable, vr: "OV", value: eot}, el{tag: tagExtendedOffsetLens, vr: "OV", value: eotLen}), "", nil, noBOT),
	}
	for name, file := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := renderBytes(file)
			if err != nil {
				t.Fatal(err)
			}
			if r.Frame != 1 || r.Frames != 3 {
				t.Errorf("frame %d of %d, want 1 of 3", r.Frame, r.Frames)
			}
			for i, v := range grayPix(t, r.Image) {
				if absDiff(v, 100) > 2 {
					t.Fatalf("pixel %d = %d, want about 100 (the middle frame)", i, v)
				}
			}
		})
	}
}

// TestErrors checks that every kind of unusable input gives its typed error.
func TestErrors(t *testing.T) {
	mono := imageElems(2, 2, 1, 16, 16, 15, 0, "MONOCHROME2")
	good := buildFile(tsExplicitLE, mono, "OW", words16(1, 2, 3, 4), nil)
	cases := []struct {
		name string
		file []byte
		want error
	}{
		{"no pixel data", buildFile(tsExplicitLE, []el{cs(0x00080060, "SR")}, "", nil, nil), ErrNoPixelData},
		{"float pixel data", append(buildFile(tsExplicitLE, mono, "", nil, nil), 0xE0, 0x7F, 0x08, 0x00, 'O', 'F', 0, 0, 4, 0, 0, 0, 0, 0, 0, 0), ErrUnsupported},
		{"unknown transfer syntax", buildFile("1.2.840.10008.1.2.4.100", mono, "", nil, encapsulate([][]byte{{1, 2}}, 10, false)), ErrUnsupportedTransferSyntax},
		{"truncated pixel data", good[:len(good)-3], ErrCorrupt},
		{"short pixel data", buildFile(tsExplicitLE, mono, "OW", words16(1, 2), nil), ErrCorrupt},
		{"bits stored above allocated", buildFile(tsExplicitLE, with(mono, us(tagBitsStored, 17)), "OW", words16(1, 2, 3, 4), nil), ErrCorrupt},
		{"5 samples per pixel", buildFile(tsExplicitLE, with(mono, us(tagSamplesPerPixel, 5)), "OW", words16(1, 2, 3, 4), nil), ErrUnsupported},
		{"corrupt JPEG frame", buildFile(tsJPEGBaseline, mono, "", nil, encapsulate([][]byte{{0xFF, 0xD8, 0xFF, 0xC0, 0, 2}}, 100, false)), ErrCorrupt},
		{"not DICOM", []byte("hello, this is not a DICOM file at all, just some text"), ErrNotDICOM},
		{"empty", nil, ErrNotDICOM},
		{"zero rows", buildFile(tsExplicitLE, with(mono, us(tagRows, 0)), "OW", words16(1, 2, 3, 4), nil), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderBytes(c.file)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := renderBytes(good); err != nil {
		t.Fatalf("control file: %v", err)
	}
}

// TestSizes checks aspect correction, the never-enlarge rule and that
// grayscale stays grayscale through resizing.
func TestSizes(t *testing.T) {
	px := make([]int, 100*200)
	file := buildFile(tsExplicitLE, with(imageElems(100, 200, 1, 16, 16, 15, 0, "MONOCHROME2"), ds(tagPixelSpacing, "1\\0.5")), "OW", words16(px...), nil)
	r, err := renderBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	// Rows are 1 mm apart, columns 0.5 mm: 200 columns span 100 mm, as do
	// the 100 rows, so the display is square at 100x100.
	if r.DisplayWidth != 100 || r.DisplayHeight != 100 {
		t.Fatalf("display %dx%d, want 100x100", r.DisplayWidth, r.DisplayHeight)
	}
	for _, c := range []struct{ max, w, h int }{{256, 100, 100}, {50, 50, 50}, {0, 100, 100}} {
		if w, h := r.Size(c.max); w != c.w || h != c.h {
			t.Errorf("Size(%d) = %dx%d, want %dx%d", c.max, w, h, c.w, c.h)
		}
	}
	small := r.Resize(50)
	if _, ok := small.(*image.Gray); !ok || small.Bounds().Dx() != 50 {
		t.Fatalf("Resize(50) = %T %v, want 50x50 *image.Gray", small, small.Bounds())
	}
	var buf bytes.Buffer
	if err := r.WriteThumbnail(&buf); err != nil {
		t.Fatal(err)
	}
	cfg, err := stdjpeg.DecodeConfig(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ColorModel != color.GrayModel || cfg.Width != 100 || cfg.Height != 100 {
		t.Fatalf("thumbnail %v %dx%d, want gray 100x100", cfg.ColorModel, cfg.Width, cfg.Height)
	}
}

// TestSegmentedIndirect checks the indirect segment of a segmented palette
// (PS3.3 C.7.9.2.3): it replays earlier segments found by byte offset.
func TestSegmentedIndirect(t *testing.T) {
	words := []uint16{0, 2, 5, 7, 2, 1, 0, 0}
	var out []uint16
	if err := expandSegments(words, words, -1, &out); err != nil {
		t.Fatal(err)
	}
	if want := []uint16{5, 7, 5, 7}; len(out) != 4 || out[0] != 5 || out[1] != 7 || out[2] != 5 || out[3] != 7 {
		t.Fatalf("got %v, want %v", out, want)
	}
	// An indirect segment pointing at itself must not loop.
	self := []uint16{2, 1, 0, 0}
	out = nil
	if err := expandSegments(self, self, -1, &out); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("self-referencing indirect segment: got %v, want ErrCorrupt", err)
	}
}

// TestShrinkGray checks the area-averaging reduction: flat stays flat,
// halving averages 2x2 blocks, and odd ratios keep the mean.
func TestShrinkGray(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 6, 4))
	for i := range src.Pix {
		src.Pix[i] = uint8(10 * (i % 6)) // columns 0,10,...,50
	}
	half := shrinkGray(src, 3, 2)
	if want := []uint8{5, 25, 45, 5, 25, 45}; !bytes.Equal(half.Pix, want) {
		t.Errorf("halved: got %v, want %v", half.Pix, want)
	}
	third := shrinkGray(src, 2, 3) // 6->2 columns, 4->3 rows
	if want := []uint8{10, 40, 10, 40, 10, 40}; !bytes.Equal(third.Pix, want) {
		t.Errorf("6x4 -> 2x3: got %v, want %v", third.Pix, want)
	}
	flat := image.NewGray(image.Rect(0, 0, 7, 5))
	for i := range flat.Pix {
		flat.Pix[i] = 200
	}
	for _, p := range shrinkGray(flat, 3, 2).Pix {
		if p != 200 {
			t.Fatalf("flat image shrank to %d, want 200", p)
		}
	}
}

// virtualFile is a DICOM file of any size that exists only as a header and
// a rule for its pixel bytes; it counts the bytes read from it.
type virtualFile struct {
	header []byte
	size   int64
	pixel  func(off int64) byte // byte at offset off of the pixel data
	read   int64
}

func (v *virtualFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off+int64(n) < v.size {
		o := off + int64(n)
		if o < int64(len(v.header)) {
			p[n] = v.header[o]
		} else {
			p[n] = v.pixel(o - int64(len(v.header)))
		}
		n++
	}
	v.read += int64(n)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestHugeMultiFrame renders a 2 GB, 4000-frame 512x512 16-bit file and
// checks that only about one frame's bytes were read: the middle frame,
// whose every pixel holds its frame number.
func TestHugeMultiFrame(t *testing.T) {
	const frames, rows, cols = 4000, 512, 512
	frameBytes := int64(rows * cols * 2)
	elems := with(imageElems(rows, cols, 1, 16, 16, 15, 0, "MONOCHROME2"), is(tagNumberOfFrames, "4000"),
		ds(tagWindowCenter, "2000"), ds(tagWindowWidth, "4000"), cs(tagVOILUTFunction, "LINEAR_EXACT"))
	header := buildFile(tsExplicitLE, elems, "", nil, nil)
	header = append(header, 0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0)
	header = binary.LittleEndian.AppendUint32(header, uint32(frames*frameBytes))
	v := &virtualFile{header: header, size: int64(len(header)) + frames*frameBytes, pixel: func(off int64) byte {
		frame := off / frameBytes
		if off%2 == 0 {
			return byte(frame)
		}
		return byte(frame >> 8)
	}}
	r, err := Render(v, v.size, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Frame != 2000 {
		t.Fatalf("rendered frame %d, want 2000", r.Frame)
	}
	for _, p := range grayPix(t, r.Image)[:10] {
		if p != 128 { // frame 2000 at window 2000/4000
			t.Fatalf("pixel %d, want 128", p)
		}
	}
	if limit := frameBytes + 64<<10; v.read > limit {
		t.Fatalf("read %d bytes of a %d-byte file, want at most %d", v.read, v.size, limit)
	}
}
