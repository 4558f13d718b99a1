package previews

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRender feeds arbitrary bytes to the whole renderer: header parser,
// frame extraction, codecs and pixel pipeline. It must never panic and
// must fail only with one of the package's typed errors. The seed corpus
// is testdata/*.dcm plus built files covering LUTs, palettes and
// encapsulation.
func FuzzRender(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.dcm"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	mono := imageElems(2, 2, 1, 16, 12, 11, 1, "MONOCHROME2")
	f.Add(buildFile(tsExplicitLE, with(mono, sq(tagModalityLUTSequence, []el{us(tagLUTDescriptor, 4, 0, 16), ow(tagLUTData, 0, 1, 2, 3)})), "OW", words16(1, 2, 3, 4), nil))
	f.Add(buildFile(tsDeflatedLE, with(mono, sq(tagVOILUTSequence, []el{us(tagLUTDescriptor, 4, 0, 8), ow(tagLUTData, 0, 1, 2, 3)})), "OW", words16(1, 2, 3, 4), nil))
	f.Add(buildFile(tsExplicitLE, with(imageElems(1, 2, 1, 8, 8, 7, 0, "PALETTE COLOR"),
		us(tagRedDescriptor, 256, 0, 16), us(tagGreenDescriptor, 256, 0, 16), us(tagBlueDescriptor, 256, 0, 16),
		ow(tagSegRedData, segLinear(65535)...), ow(tagSegGreenData, 2, 1, 0, 0), ow(tagSegBlueData, segLinear(1)...)), "OB", []byte{1, 2}, nil))
	f.Add(buildFile(tsRLE, with(mono, is(tagNumberOfFrames, "2")), "", nil, encapsulate([][]byte{{1, 0, 0, 0, 64, 0, 0, 0}, {1, 0}}, 4, true)))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{MaxPixels: 1 << 20, MaxFrameBytes: 1 << 24}
		r, err := Render(bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if b := r.Image.Bounds(); b.Dx() < 1 || b.Dy() < 1 {
			t.Fatalf("empty image %v", b)
		}
		var buf bytes.Buffer
		if err := r.EncodeJPEG(&buf, 16); err != nil {
			t.Fatal(err)
		}
	})
}

func isTyped(err error) bool {
	for _, e := range []error{ErrNotDICOM, ErrNoPixelData, ErrUnsupportedTransferSyntax, ErrUnsupported, ErrCorrupt, ErrTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
