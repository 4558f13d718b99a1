package jpeg2000

import (
	"errors"
	"math"
	"testing"

	"dicomgate/dimse/dicomtest"
)

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
	want := dicomtest.OPJDecompress(t, stream, img.Width, img.Height, img.Components, img.Precision)
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
	psnr = dicomtest.PSNR(se, len(want), img.Precision)
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
	p := dicomtest.PydicomFile(t, "JPEG2000-embedded-sequence-delimiter.dcm")
	for _, s := range dicomtest.ReadPixels(t, p).Frames(t, dicomtest.StartJPEG2000) {
		if _, err := Decode(s); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("damaged codestream: error %v", err)
		}
	}
}

// TestCorpusAgainstOpenJPEG decodes the JPEG 2000 files of the pydicom
// corpus; lossless ones must be bit-exact.
func TestCorpusAgainstOpenJPEG(t *testing.T) {
	dicomtest.LookPath(t, "opj_decompress")
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
			p := dicomtest.PydicomFile(t, f.name)
			for i, s := range dicomtest.ReadPixels(t, p).Frames(t, dicomtest.StartJPEG2000) {
				exact, psnr := compareOPJ(t, s, 35)
				if f.lossless && !exact {
					t.Fatalf("frame %d: lossless stream not bit-exact (PSNR %.2f)", i, psnr)
				}
			}
		})
	}
}
