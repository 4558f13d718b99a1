package previews

import (
	"errors"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// minPSNR is the agreement required with the DCMTK reference render.
const minPSNR = 35.0

// outcome is what rendering one corpus file must give: a render that
// matches DCMTK (err nil), or an error wrapping err.
type outcome struct {
	err    error
	reason string // why a file fails; documentation for the table
}

var render = outcome{}

func fails(err error, reason string) outcome { return outcome{err: err, reason: reason} }

// notDICOM and noPixels are the outcomes of files that are not DICOM, and
// of DICOM files that hold no pixel data (the pydicom DICOMDIR tree's
// TINY_ALPHA records among them).
var (
	notDICOM = fails(ErrNotDICOM, "not a DICOM file")
	noPixels = fails(ErrNoPixelData, "no Pixel Data element")
)

// corpusExpect lists every file of both corpora with its expected outcome.
// A file missing from the table fails the test, so new corpus files are
// noticed.
func corpusExpect() map[string]outcome {
	m := map[string]outcome{
		// suyashkumar/dicom testdata (TCIA).
		"suyashkumar/1.dcm": render, // PET, nested sequences and icon image
		"suyashkumar/2.dcm": render,
		"suyashkumar/3.dcm": render, // MR, 12 of 16 bits
		"suyashkumar/4.dcm": render, // CR MONOCHROME1, implicit VR, 10 bits
		"suyashkumar/5.dcm": render, // CT 2 frames: frame 2 is rendered
		"suyashkumar/6.dcm": render, // deflated

		// pydicom test files.
		"pydicom/693_J2KI.dcm":                             render,
		"pydicom/CT_small.dcm":                             render,
		"pydicom/ExplVR_BigEnd.dcm":                        render,
		"pydicom/ExplVR_BigEndNoMeta.dcm":                  noPixels,
		"pydicom/ExplVR_LitEndNoMeta.dcm":                  noPixels,
		"pydicom/GDCMJ2K_TextGBR.dcm":                      render,
		"pydicom/J2K_pixelrep_mismatch.dcm":                render,
		"pydicom/JPEG-lossy.dcm":                           render,
		"pydicom/JPEG2000-embedded-sequence-delimiter.dcm": fails(ErrUnsupportedTransferSyntax, "SIZ overwritten by a sequence delimiter: the codec refuses its absurd size"),
		"pydicom/JPEG2000.dcm":                             render,
		"pydicom/JPGExtended.dcm":                          render,
		"pydicom/MR_small.dcm":                             render,
		"pydicom/MR_small_RLE.dcm":                         render,
		"pydicom/MR_small_bigendian.dcm":                   render,
		"pydicom/MR_small_expb.dcm":                        render,
		"pydicom/MR_small_implicit.dcm":                    render,
		"pydicom/MR_small_jp2klossless.dcm":                render,
		"pydicom/MR_small_jpeg_ls_lossless.dcm":            render,
		"pydicom/MR_small_padded.dcm":                      render,
		"pydicom/MR_truncated.dcm":                         fails(ErrCorrupt, "pixel data cut short"),
		"pydicom/README.txt":                               notDICOM,
		"pydicom/SC_jpeg_no_color_transform.dcm":           render,
		"pydicom/SC_jpeg_no_color_transform_2.dcm":         render,
		"pydicom/SC_rgb_dcmtk_+eb+cr.dcm":                  render,
		"pydicom/SC_rgb_dcmtk_+eb+cy+n1.dcm":               render,
		"pydicom/SC_rgb_dcmtk_+eb+cy+n2.dcm":               render,
		"pydicom/SC_rgb_dcmtk_+eb+cy+np.dcm":               render,
		"pydicom/SC_rgb_dcmtk_+eb+cy+s2.dcm":               render,
		"pydicom/SC_rgb_dcmtk_+eb+cy+s4.dcm":               render,
		"pydicom/SC_rgb_gdcm_KY.dcm":                       render,
		"pydicom/SC_rgb_jpeg.dcm":                          fails(ErrCorrupt, "meta says explicit VR, data set is implicit VR (DCMTK refuses it too)"),
		"pydicom/SC_rgb_jpeg_app14_dcmd.dcm":               render,
		"pydicom/SC_rgb_jpeg_dcmd.dcm":                     render,
		"pydicom/SC_rgb_jpeg_dcmtk.dcm":                    render,
		"pydicom/SC_rgb_jpeg_gdcm.dcm":                     render,
		"pydicom/SC_rgb_jpeg_lossy_gdcm.dcm":               render,
		"pydicom/SC_rgb_rle.dcm":                           render,
		"pydicom/SC_rgb_rle_16bit.dcm":                     render,
		"pydicom/SC_rgb_rle_16bit_2frame.dcm":              render,
		"pydicom/SC_rgb_rle_2frame.dcm":                    render,
		"pydicom/SC_rgb_rle_32bit.dcm":                     render,
		"pydicom/SC_rgb_rle_32bit_2frame.dcm":              render,
		"pydicom/SC_rgb_small_odd.dcm":                     render,
		"pydicom/SC_rgb_small_odd_jpeg.dcm":                render,
		"pydicom/SC_ybr_full_422_uncompressed.dcm":         render,
		"pydicom/UN_sequence.dcm":                          noPixels,
		"pydicom/badVR.dcm":                                fails(ErrCorrupt, `Number of Frames is "1A"`),
		"pydicom/empty_charset_LEI.dcm":                    noPixels,
		"pydicom/image_dfl.dcm":                            render,
		"pydicom/liver_1frame.dcm":                         render, // 1 bit allocated
		"pydicom/liver_expb_1frame.dcm":                    render,
		"pydicom/meta_missing_tsyntax.dcm":                 fails(ErrCorrupt, "transfer syntax guessed; Pixel Data without Rows/Columns"),
		"pydicom/nested_priv_SQ.dcm":                       fails(ErrCorrupt, "Pixel Data without Rows/Columns"),
		"pydicom/no_meta.dcm":                              fails(ErrNotDICOM, "no preamble, no meta, starts with a stray byte"),
		"pydicom/no_meta_group_length.dcm":                 noPixels,
		"pydicom/priv_SQ.dcm":                              noPixels,
		"pydicom/reportsi.dcm":                             noPixels,
		"pydicom/reportsi_with_empty_number_tags.dcm":      noPixels,
		"pydicom/rtdose.dcm":                               render, // 32-bit, 15 frames
		"pydicom/rtdose_1frame.dcm":                        render,
		// DCMTK 3.6.7 reads 32-bit big-endian OW pixel data with its 16-bit
		// words swapped; these are compared with the DCMTK renders of their
		// little-endian twins (see sameAs).
		"pydicom/rtdose_expb.dcm":        render,
		"pydicom/rtdose_expb_1frame.dcm": render,
		"pydicom/rtdose_rle.dcm":         render,
		"pydicom/rtdose_rle_1frame.dcm":  render,
		"pydicom/rtplan.dcm":             noPixels,
		"pydicom/rtplan.dump":            notDICOM,
		"pydicom/rtplan_truncated.dcm":   fails(ErrCorrupt, "truncated inside the header"),
		"pydicom/rtstruct.dcm":           noPixels,
		"pydicom/rtstruct.dump":          notDICOM,
		"pydicom/test-SR.dcm":            noPixels,
		"pydicom/test1.json":             notDICOM,
		"pydicom/test_PN.json":           notDICOM,
		"pydicom/waveform_ecg.dcm":       noPixels,
		"pydicom/zipMR.gz":               notDICOM,

		"pydicom/dicomdirtests/DICOMDIR":            noPixels,
		"pydicom/dicomdirtests/DICOMDIR-bigEnd":     noPixels,
		"pydicom/dicomdirtests/DICOMDIR-empty.dcm":  noPixels,
		"pydicom/dicomdirtests/DICOMDIR-implicit":   noPixels,
		"pydicom/dicomdirtests/DICOMDIR-nooffset":   fails(ErrCorrupt, "ends inside an undefined-length sequence"),
		"pydicom/dicomdirtests/DICOMDIR-nopatient":  noPixels,
		"pydicom/dicomdirtests/DICOMDIR-reordered":  noPixels,
		"pydicom/dicomdirtests/TINY_ALPHA/README":   notDICOM,
		"pydicom/dicomdirtests/README.txt":          notDICOM,
		"pydicom/dicomdirtests/TINY_ALPHA/DICOMDIR": noPixels,
	}
	return m
}

// sameAs names the corpus file whose DCMTK render is the reference for a
// file DCMTK itself renders wrongly.
var sameAs = map[string]string{
	"pydicom/rtdose_expb.dcm":        "pydicom/rtdose.dcm",
	"pydicom/rtdose_expb_1frame.dcm": "pydicom/rtdose_1frame.dcm",
}

// j2kFiles are the JPEG 2000 files, whose reference is OpenJPEG's decode.
var j2kFiles = map[string]bool{
	"pydicom/693_J2KI.dcm":              true,
	"pydicom/GDCMJ2K_TextGBR.dcm":       true,
	"pydicom/J2K_pixelrep_mismatch.dcm": true,
	"pydicom/JPEG2000.dcm":              true,
	"pydicom/MR_small_jp2klossless.dcm": true,
	"pydicom/SC_rgb_gdcm_KY.dcm":        true,
}

// corpusFile is one file of the corpora, named by its table key.
type corpusFile struct{ key, path string }

func corpusFiles(t *testing.T) []corpusFile {
	var files []corpusFile
	root := dicomtest.RequireFile(t, dicomtest.PydicomTestFiles)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, corpusFile{key: "pydicom/" + filepath.ToSlash(rel), path: p})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sdir := dicomtest.SuyashTestdata(t)
	matches, _ := filepath.Glob(filepath.Join(sdir, "*.dcm"))
	for _, p := range matches {
		files = append(files, corpusFile{key: "suyashkumar/" + filepath.Base(p), path: p})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].key < files[j].key })
	return files
}

// expectFor finds a file's expected outcome. The DICOMDIR test tree holds
// many small images and record files; they are classified by directory.
func expectFor(table map[string]outcome, key string) (outcome, bool) {
	if o, ok := table[key]; ok {
		return o, true
	}
	switch {
	case strings.HasPrefix(key, "pydicom/dicomdirtests/TINY_ALPHA/"):
		return noPixels, true
	case strings.HasPrefix(key, "pydicom/dicomdirtests/"):
		return render, true
	}
	return outcome{}, false
}

// TestCorpus renders every file of the pydicom and suyashkumar/dicom
// corpora. Files expected to render must match DCMTK's render of the same
// frame with the same VOI rule at full resolution; the others must fail
// with the listed error.
func TestCorpus(t *testing.T) {
	tool := dicomtest.LookPath(t, "dcmj2pnm")
	lsTool := dicomtest.LookPath(t, "dcml2pnm")
	table := corpusExpect()
	files := corpusFiles(t)
	paths := make(map[string]string, len(files))
	for _, f := range files {
		paths[f.key] = f.path
	}
	for _, f := range files {
		t.Run(f.key, func(t *testing.T) {
			want, ok := expectFor(table, f.key)
			if !ok {
				t.Fatalf("%s is not in the expected-outcome table", f.key)
			}
			r, err := RenderFile(f.path, Options{})
			if want.err != nil {
				if !errors.Is(err, want.err) {
					t.Fatalf("got %v, want %v (%s)", err, want.err, want.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			ref := tool
			if strings.Contains(f.key, "jpeg_ls") {
				ref = lsTool
			}
			refPath := f.path
			if twin, ok := sameAs[f.key]; ok {
				refPath = paths[twin]
			}
			var want2 image.Image
			if j2kFiles[f.key] {
				want2, err = j2kReference(t, refPath, r.Frame)
			} else {
				want2, err = dcmtkReference(t, ref, refPath, r.Frame, r.voi)
			}
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			p, err := psnr(r.Image, want2)
			if err != nil {
				t.Fatal(err)
			}
			if os.Getenv("PREVIEWS_CORPUS_VERBOSE") != "" {
				t.Logf("PSNR %.1f dB (%s, frame %d of %d)", p, r.voi, r.Frame, r.Frames)
			}
			if p < minPSNR {
				t.Errorf("PSNR %.1f dB against DCMTK, want >= %.0f (voi %s)", p, minPSNR, r.voi)
			}
		})
	}
}
