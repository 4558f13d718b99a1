package jpegls

import (
	"fmt"
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// compareWithDCMTK decodes every frame of the JPEG-LS DICOM file in with
// Decode and checks it equals what dcmdjpls decodes, sample for sample.
func compareWithDCMTK(t *testing.T, in string) {
	t.Helper()
	ref := filepath.Join(t.TempDir(), "ref.dcm")
	dicomtest.Run(t, "dcmdjpls", in, ref)
	comp := dicomtest.ReadPixels(t, in)
	want := dicomtest.ReadPixels(t, ref)
	for i, stream := range comp.Frames(t, dicomtest.StartJPEG) {
		img, err := Decode(stream)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if img.Width != comp.Columns || img.Height != comp.Rows || img.Components != comp.SamplesPerPixel {
			t.Fatalf("frame %d: got %dx%dx%d, DICOM says %dx%dx%d", i, img.Width, img.Height, img.Components, comp.Columns, comp.Rows, comp.SamplesPerPixel)
		}
		exp, err := want.NativeSamples(i)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		// Samples are compared as coded: DCMTK sign-extends signed data
		// with BitsStored < BitsAllocated, the codec does not.
		mask := uint16(1<<uint(img.Precision) - 1)
		bad := 0
		for k := range exp {
			if img.Pix[k] != exp[k]&mask {
				if bad < 5 {
					t.Errorf("frame %d sample %d (x=%d y=%d c=%d): got %d, dcmdjpls %d", i, k,
						k/img.Components%img.Width, k/img.Components/img.Width, k%img.Components, img.Pix[k], exp[k]&mask)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Fatalf("frame %d: %d of %d samples differ", i, bad, len(exp))
		}
	}
}

// TestCorpusAgainstDCMTK decodes the JPEG-LS files of the pydicom corpus.
func TestCorpusAgainstDCMTK(t *testing.T) {
	dicomtest.LookPath(t, "dcmdjpls")
	for _, name := range []string{"MR_small_jpeg_ls_lossless.dcm"} {
		t.Run(name, func(t *testing.T) {
			compareWithDCMTK(t, dicomtest.PydicomFile(t, name))
		})
	}
}

// TestEncodedByDCMTK encodes uncompressed corpus files with dcmcjpls in
// every interleave mode, lossless and near-lossless, with default and
// custom preset parameters, and checks Decode matches dcmdjpls.
func TestEncodedByDCMTK(t *testing.T) {
	dicomtest.LookPath(t, "dcmcjpls")
	dicomtest.LookPath(t, "dcmdjpls")
	pydicom, suyash := dicomtest.PydicomTestFiles, dicomtest.SuyashTestdata(t)
	// DCMTK refuses near-lossless coding of signed pixel data, so signed
	// sources get the lossless variants only.
	sources := []struct {
		path   string
		signed bool
	}{
		{filepath.Join(pydicom, "CT_small.dcm"), true},          // 16-bit signed
		{filepath.Join(pydicom, "MR_small.dcm"), true},          // 16-bit signed
		{filepath.Join(pydicom, "SC_rgb_jpeg_dcmd.dcm"), false}, // RGB 8-bit
		{filepath.Join(pydicom, "ExplVR_BigEnd.dcm"), false},    // RGB, big endian
		{filepath.Join(pydicom, "image_dfl.dcm"), false},        // 8-bit, deflated
		{filepath.Join(suyash, "3.dcm"), false},                 // MR
		{filepath.Join(suyash, "5.dcm"), false},                 // CT, 2 frames
		{filepath.Join(suyash, "1.dcm"), true},                  // PET
	}
	variants := []struct {
		name     string
		args     []string
		ilv      int  // expected interleave mode for colour images
		lse      bool // expect an LSE preset parameters segment (DCMTK also writes one for MAXVAL < 2^P-1)
		nearLoss bool
	}{
		{"lossless-line", []string{"+el", "+il"}, 1, false, false},
		{"lossless-sample", []string{"+el", "+is"}, 2, false, false},
		{"lossless-none", []string{"+el", "+in"}, 0, false, false},
		{"near2-line", []string{"+en", "+il"}, 1, false, true},
		{"near5-sample", []string{"+en", "+md", "5", "+is"}, 2, false, true},
		{"near1-none", []string{"+en", "+md", "1", "+in"}, 0, false, true},
		{"custom-presets", []string{"+el", "+il", "+t1", "5", "+t2", "11", "+t3", "40", "+rs", "32"}, 1, true, false},
		{"custom-near3", []string{"+en", "+md", "3", "+t1", "9", "+t2", "20", "+t3", "60", "+rs", "100"}, 1, true, true},
	}
	for _, src := range sources {
		dicomtest.RequireFile(t, src.path)
		for _, v := range variants {
			if v.nearLoss && src.signed {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", filepath.Base(src.path), v.name), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "ls.dcm")
				dicomtest.Run(t, "dcmcjpls", append(v.args, src.path, out)...)
				comp := dicomtest.ReadPixels(t, out)
				first := comp.Frames(t, dicomtest.StartJPEG)[0]
				ilv, near, lse := streamInfo(first)
				if comp.SamplesPerPixel > 1 && ilv != v.ilv {
					t.Errorf("dcmcjpls wrote interleave mode %d, want %d", ilv, v.ilv)
				}
				// DCMTK also writes LSE for MAXVAL below 2^P-1, so only its
				// presence is checked.
				if v.nearLoss != (near > 0) || (v.lse && !lse) {
					t.Errorf("stream has NEAR=%d LSE=%v, variant wants near-lossless=%v LSE=%v", near, lse, v.nearLoss, v.lse)
				}
				compareWithDCMTK(t, out)
			})
		}
	}
}

// streamInfo reports the interleave mode and NEAR of the first scan and
// whether an LSE segment precedes it, so the tests prove which coding
// options the peer actually exercised.
func streamInfo(b []byte) (ilv, near int, lse bool) {
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return -1, -1, lse
		}
		m := b[i+1]
		n := int(b[i+2])<<8 | int(b[i+3])
		if m == markerLSE {
			lse = true
		}
		if m == markerSOS {
			seg := b[i+4 : i+2+n]
			ns := int(seg[0])
			return int(seg[2+2*ns]), int(seg[1+2*ns]), lse
		}
		i += 2 + n
	}
	return -1, -1, lse
}
