package jpeg

import (
	"path/filepath"
	"slices"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// variant is a JPEG-compressed DICOM file to check against DCMTK: either a
// corpus file as is (opts nil) or one dcmcjpeg makes from src with opts.
type variant struct {
	name string
	src  func(testing.TB) string
	opts []string
}

func corpus(name string) func(testing.TB) string {
	return func(t testing.TB) string { return dicomtest.PydicomFile(t, name) }
}

func suyash(name string) func(testing.TB) string {
	return func(t testing.TB) string { return dicomtest.SuyashFile(t, name) }
}

// peerCase is one frame decoded by us and by dcmdjpeg.
type peerCase struct {
	name      string
	bitstream []byte
	want      []uint16 // dcmdjpeg +cn +px output, interleaved
	p         dicomtest.Pixels
}

// peerCases compresses each variant with dcmcjpeg where needed,
// decompresses it with dcmdjpeg without colour conversion and
// colour-by-pixel, and returns every frame of every file.
func peerCases(t *testing.T, vs []variant) []peerCase {
	t.Helper()
	dicomtest.LookPath(t, "dcmcjpeg")
	dicomtest.LookPath(t, "dcmdjpeg")
	dir := t.TempDir()
	var cases []peerCase
	for i, v := range vs {
		in := v.src(t)
		if v.opts != nil {
			out := filepath.Join(dir, "c"+itoa(i)+".dcm")
			dicomtest.Run(t, "dcmcjpeg", append(append([]string{}, v.opts...), in, out)...)
			in = out
		}
		dec := filepath.Join(dir, "d"+itoa(i)+".dcm")
		dicomtest.Run(t, "dcmdjpeg", "+cn", "+px", in, dec)
		enc := dicomtest.ReadPixels(t, in)
		ref := dicomtest.ReadPixels(t, dec)
		for f, bs := range enc.Frames(t, dicomtest.StartJPEG) {
			want, err := ref.NativeSamples(f)
			if err != nil {
				t.Fatalf("%s frame %d: %v", v.name, f, err)
			}
			cases = append(cases, peerCase{name: v.name + "/frame" + itoa(f), bitstream: bs, want: want, p: ref})
		}
	}
	return cases
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// losslessVariants covers the corpus's lossless files and dcmcjpeg's
// lossless encodings with every selection value and some point transforms,
// on 16-bit signed, 12-bit, 8-bit, RGB and multi-frame sources.
func losslessVariants() []variant {
	vs := []variant{
		{"SC_rgb_jpeg_gdcm(.70)", corpus("SC_rgb_jpeg_gdcm.dcm"), nil},
		{"MR_small+e1", corpus("MR_small.dcm"), []string{"+e1"}},
		{"CT_small+e1", corpus("CT_small.dcm"), []string{"+e1"}},
		{"3+e1", suyash("3.dcm"), []string{"+e1"}},
		{"5+e1(2 frames 512x512)", suyash("5.dcm"), []string{"+e1"}},
		{"5+el+sv6", suyash("5.dcm"), []string{"+el", "+sv", "6"}},
		{"6+el+sv3(8-bit)", suyash("6.dcm"), []string{"+el", "+sv", "3"}},
		{"SC_rgb_jpeg_dcmd+e1", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+e1"}},
		{"SC_rgb_jpeg_dcmd+el+sv5", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+el", "+sv", "5"}},
		{"SC_rgb_jpeg_dcmd+el+sv2+pt1", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+el", "+sv", "2", "+pt", "1"}},
		{"SC_rgb_small_odd+el+sv7", corpus("SC_rgb_small_odd.dcm"), []string{"+el", "+sv", "7"}},
		{"MR_small+el+sv7+pt2", corpus("MR_small.dcm"), []string{"+el", "+sv", "7", "+pt", "2"}},
		{"3+el+sv4+pt3", suyash("3.dcm"), []string{"+el", "+sv", "4", "+pt", "3"}},
	}
	for sv := 1; sv <= 7; sv++ {
		s := itoa(sv)
		vs = append(vs,
			variant{"MR_small+el+sv" + s, corpus("MR_small.dcm"), []string{"+el", "+sv", s}},
			variant{"CT_small+el+sv" + s, corpus("CT_small.dcm"), []string{"+el", "+sv", s}},
		)
	}
	return vs
}

// TestLosslessBitExactAgainstDCMTK checks that every lossless frame decodes
// to exactly the samples dcmdjpeg produces.
func TestLosslessBitExactAgainstDCMTK(t *testing.T) {
	for _, c := range peerCases(t, losslessVariants()) {
		t.Run(c.name, func(t *testing.T) {
			img := c.decode(t)
			if img.Precision > 16 || img.Precision < 2 {
				t.Fatalf("precision %d", img.Precision)
			}
			mask := uint16(1<<img.Precision - 1)
			for i, got := range img.Pix {
				// DCMTK may sign-extend signed samples beyond P bits;
				// the coded value is the low P bits.
				if want := c.want[i] & mask; got != want {
					t.Fatalf("sample %d (x=%d y=%d c=%d): got %d, dcmdjpeg %d", i, i/img.Components%img.Width, i/img.Components/img.Width, i%img.Components, got, want)
				}
			}
		})
	}
}

// decode decodes the case's bitstream and checks the image has the
// DICOM file's size and dcmdjpeg's number of samples.
func (c peerCase) decode(t *testing.T) *Image {
	t.Helper()
	img, err := Decode(c.bitstream)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if img.Width != c.p.Columns || img.Height != c.p.Rows || img.Components != c.p.SamplesPerPixel {
		t.Fatalf("got %dx%dx%d, DICOM says %dx%dx%d", img.Width, img.Height, img.Components, c.p.Columns, c.p.Rows, c.p.SamplesPerPixel)
	}
	if len(img.Pix) != len(c.want) {
		t.Fatalf("got %d samples, dcmdjpeg %d", len(img.Pix), len(c.want))
	}
	return img
}

// lossyVariants covers the corpus's baseline and extended files and
// dcmcjpeg's lossy encodings: 8 and 12 bit, grey and colour, every
// subsampling dcmcjpeg offers, progressive and spectral selection.
func lossyVariants() []variant {
	vs := []variant{
		{"MR_small+ee(12-bit)", corpus("MR_small.dcm"), []string{"+ee"}},
		{"CT_small+ee(12-bit)", corpus("CT_small.dcm"), []string{"+ee"}},
		{"3+ee(12-bit)", suyash("3.dcm"), []string{"+ee"}},
		{"3+eb", suyash("3.dcm"), []string{"+eb"}},
		{"5+eb(2 frames)", suyash("5.dcm"), []string{"+eb"}},
		{"6+eb(8-bit)", suyash("6.dcm"), []string{"+eb"}},
		{"SC_rgb_jpeg_dcmd+eb(422)", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+eb"}},
		{"SC_rgb_jpeg_dcmd+eb+s4", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+eb", "+s4"}},
		{"SC_rgb_jpeg_dcmd+eb+n1(411)", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+eb", "+n1"}},
		{"SC_rgb_jpeg_dcmd+eb+cr", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+eb", "+cr"}},
		{"SC_rgb_jpeg_dcmd+ee+bt(12-bit colour)", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+ee", "+bt"}},
		{"SC_rgb_jpeg_dcmd+ep(progressive)", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+ep"}},
		{"SC_rgb_jpeg_dcmd+es(spectral)", corpus("SC_rgb_jpeg_dcmd.dcm"), []string{"+es"}},
		{"MR_small+ep(12-bit progressive)", corpus("MR_small.dcm"), []string{"+ep"}},
		{"SC_rgb_small_odd+eb", corpus("SC_rgb_small_odd.dcm"), []string{"+eb"}},
	}
	for _, f := range []string{
		"JPEG-lossy.dcm", "JPGExtended.dcm", "SC_jpeg_no_color_transform.dcm", "SC_jpeg_no_color_transform_2.dcm",
		"SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm",
		"SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_dcmtk_+eb+cy+s4.dcm",
		"SC_rgb_jpeg_app14_dcmd.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm",
		"SC_rgb_small_odd_jpeg.dcm",
	} {
		vs = append(vs, variant{f, corpus(f), nil})
	}
	return vs
}

// psnr returns the peak signal-to-noise ratio of got against want for
// samples of the given precision, and the largest absolute difference.
func psnr(got, want []uint16, precision int) (float64, int) {
	var sse float64
	maxDiff := 0
	for i := range got {
		d := int(got[i]) - int(want[i])
		sse += float64(d * d)
		maxDiff = max(maxDiff, d, -d)
	}
	return dicomtest.PSNR(sse, len(got), precision), maxDiff
}

// TestLossyAgainstDCMTK checks that baseline, extended and progressive
// frames decode within 35 dB PSNR of dcmdjpeg's output (IDCTs may differ
// by rounding).
func TestLossyAgainstDCMTK(t *testing.T) {
	for _, c := range peerCases(t, lossyVariants()) {
		t.Run(c.name, func(t *testing.T) {
			img := c.decode(t)
			p, maxDiff := psnr(img.Pix, c.want, img.Precision)
			t.Logf("%s: %dx%dx%d P=%d PSNR %.1f dB, max |diff| %d", c.name, img.Width, img.Height, img.Components, img.Precision, p, maxDiff)
			if p < 35 {
				t.Errorf("PSNR %.1f dB < 35 dB against dcmdjpeg", p)
			}
		})
	}
}

// TestProgressiveMatchesSequential decodes dcmcjpeg's progressive and
// spectral-selection encodings of a file and its extended sequential one:
// they quantise identically, so the coefficients, and our output, must
// agree exactly.
func TestProgressiveMatchesSequential(t *testing.T) {
	dicomtest.LookPath(t, "dcmcjpeg")
	dir := t.TempDir()
	for _, src := range []variant{
		{"MR_small(12-bit)", corpus("MR_small.dcm"), nil},
		{"SC_rgb_jpeg_dcmd(YCbCr 4:2:2)", corpus("SC_rgb_jpeg_dcmd.dcm"), nil},
	} {
		t.Run(src.name, func(t *testing.T) {
			in := src.src(t)
			decoded := map[string]*Image{}
			for _, process := range []string{"+ee", "+ep", "+es"} {
				out := filepath.Join(dir, process+".dcm")
				dicomtest.Run(t, "dcmcjpeg", process, in, out)
				img, err := Decode(dicomtest.ReadPixels(t, out).Frames(t, dicomtest.StartJPEG)[0])
				if err != nil {
					t.Fatalf("%s: %v", process, err)
				}
				decoded[process] = img
			}
			for _, process := range []string{"+ep", "+es"} {
				if !slices.Equal(decoded[process].Pix, decoded["+ee"].Pix) {
					t.Errorf("%s decodes differently from +ee", process)
				}
			}
		})
	}
}
