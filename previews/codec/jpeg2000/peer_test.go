package jpeg2000

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// opjDecode runs opj_decompress on a codestream (or JP2 file) and returns
// its samples, components interleaved, as the Image's Pix layout.
func opjDecode(t testing.TB, stream []byte, w, h, nc, prec int) []uint16 {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.j2k")
	if !bytes.HasPrefix(stream, []byte{0xFF, 0x4F}) {
		in = filepath.Join(dir, "in.jp2")
	}
	if err := os.WriteFile(in, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.rawl")
	run(t, "opj_decompress", "-quiet", "-i", in, "-o", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	bps := 1
	if prec > 8 {
		bps = 2
	}
	n := w * h
	if len(raw) != n*nc*bps {
		t.Fatalf("opj_decompress wrote %d bytes for %dx%dx%d, precision %d", len(raw), w, h, nc, prec)
	}
	pix := make([]uint16, n*nc)
	for c := range nc {
		for i := range n {
			// .rawl stores the components one after the other.
			k := c*n + i
			var v uint16
			if bps == 1 {
				v = uint16(raw[k])
			} else {
				v = binary.LittleEndian.Uint16(raw[2*k:])
			}
			pix[i*nc+c] = v
		}
	}
	return pix
}

// sampleValue interprets v as a prec-bit sample.
func sampleValue(v uint16, prec int, signed bool) int {
	if !signed {
		return int(v)
	}
	x := int(v) & (1<<uint(prec) - 1)
	if prec < 16 && x&(1<<uint(prec-1)) != 0 {
		x -= 1 << uint(prec)
	}
	return int(int16(uint16(x)))
}

// compareOPJ decodes stream with Decode and with opj_decompress. Lossless
// (all reversible) streams must match exactly, others reach minPSNR.
func compareOPJ(t *testing.T, stream []byte, minPSNR float64) (exact bool, psnr float64) {
	t.Helper()
	img, err := Decode(stream)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := opjDecode(t, stream, img.Width, img.Height, img.Components, img.Precision)
	var se float64
	bad := 0
	for i := range want {
		a := sampleValue(img.Pix[i], img.Precision, img.Signed)
		b := sampleValue(want[i], img.Precision, img.Signed)
		if img.Precision <= 8 && img.Signed {
			b = int(int8(uint8(want[i])))
		}
		if a != b {
			if bad < 5 {
				t.Logf("sample %d (x=%d y=%d c=%d): got %d, opj_decompress %d", i, i/img.Components%img.Width, i/img.Components/img.Width, i%img.Components, a, b)
			}
			bad++
			se += float64(a-b) * float64(a-b)
		}
	}
	if bad == 0 {
		return true, math.Inf(1)
	}
	peak := float64(int(1)<<uint(img.Precision) - 1)
	psnr = 10 * math.Log10(peak*peak/(se/float64(len(want))))
	t.Logf("%d of %d samples differ, PSNR %.2f dB", bad, len(want), psnr)
	if psnr < minPSNR {
		t.Fatalf("PSNR %.2f dB below %.0f dB", psnr, minPSNR)
	}
	return false, psnr
}

// TestCorpusBroken checks a corpus file whose codestream is damaged (a
// DICOM sequence delimiter overwrote part of SIZ; opj_decompress rejects it
// too) fails with a typed error.
func TestCorpusBroken(t *testing.T) {
	p := filepath.Join(pydicomDir, "JPEG2000-embedded-sequence-delimiter.dcm")
	requireFile(t, p)
	d := readDICOM(t, p, false)
	for _, s := range d.frameStreams(t) {
		if _, err := Decode(s); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("damaged codestream: error %v", err)
		}
	}
}

// TestCorpusAgainstOpenJPEG decodes the JPEG 2000 files of the pydicom
// corpus; lossless ones must be bit-exact.
func TestCorpusAgainstOpenJPEG(t *testing.T) {
	requireTool(t, "opj_decompress")
	files := []struct {
		name     string
		lossless bool
	}{
		{"MR_small_jp2klossless.dcm", true},
		{"J2K_pixelrep_mismatch.dcm", true},
		{"GDCMJ2K_TextGBR.dcm", true}, // JP2 wrapper inside DICOM, RCT
		{"693_J2KI.dcm", false},
		{"JPEG2000.dcm", false},
		{"SC_rgb_gdcm_KY.dcm", false},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			p := filepath.Join(pydicomDir, f.name)
			requireFile(t, p)
			d := readDICOM(t, p, false)
			for i, s := range d.frameStreams(t) {
				exact, psnr := compareOPJ(t, s, 35)
				if f.lossless && !exact {
					t.Fatalf("frame %d: lossless stream not bit-exact (PSNR %.2f)", i, psnr)
				}
			}
		})
	}
}
