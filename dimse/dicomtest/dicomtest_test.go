package dicomtest

import (
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestGroupFragments(t *testing.T) {
	soi := []byte(StartJPEG)
	a, b, c := append(append([]byte{}, soi...), 1), []byte{2}, append(append([]byte{}, soi...), 3)
	tests := []struct {
		name   string
		frags  [][]byte
		frames int
		start  string
		want   [][]byte // nil: an error
	}{
		{"one per frame", [][]byte{a, b}, 2, StartNone, [][]byte{a, b}},
		{"RLE needs one per frame", [][]byte{a, b}, 1, StartNone, nil},
		{"split at SOI", [][]byte{a, b, c}, 2, StartJPEG, [][]byte{append(append([]byte{}, a...), b...), c}},
		{"single frame joined", [][]byte{a, b}, 1, StartJPEG, [][]byte{append(append([]byte{}, a...), b...)}},
		{"JP2 first fragment", [][]byte{b, b}, 1, StartJPEG2000, [][]byte{{2, 2}}},
		{"too few frames", [][]byte{a, b}, 3, StartJPEG, nil},
		{"native", nil, 1, StartJPEG, nil},
	}
	for _, tt := range tests {
		got, err := groupFragments(tt.frags, tt.frames, tt.start)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: got %v, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || !slices.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestNativeSamples(t *testing.T) {
	tests := []struct {
		name  string
		p     Pixels
		frame int
		want  []uint16 // nil: an error
	}{
		{"8-bit grey frame 1", Pixels{Rows: 1, Columns: 2, SamplesPerPixel: 1, BitsAllocated: 8, Native: []byte{1, 2, 3, 4}}, 1, []uint16{3, 4}},
		{"16-bit little endian", Pixels{Rows: 1, Columns: 2, SamplesPerPixel: 1, BitsAllocated: 16, Native: []byte{1, 2, 3, 4}}, 0, []uint16{0x201, 0x403}},
		{"RGB planar", Pixels{Rows: 1, Columns: 2, SamplesPerPixel: 3, BitsAllocated: 8, PlanarConfiguration: 1, Native: []byte{1, 2, 3, 4, 5, 6}}, 0, []uint16{1, 3, 5, 2, 4, 6}},
		{"RGB interleaved", Pixels{Rows: 1, Columns: 2, SamplesPerPixel: 3, BitsAllocated: 8, Native: []byte{1, 2, 3, 4, 5, 6}}, 0, []uint16{1, 2, 3, 4, 5, 6}},
		{"short", Pixels{Rows: 2, Columns: 2, SamplesPerPixel: 1, BitsAllocated: 8, Native: []byte{1, 2, 3}}, 0, nil},
		{"32 bits", Pixels{Rows: 1, Columns: 1, SamplesPerPixel: 1, BitsAllocated: 32, Native: []byte{1, 2, 3, 4}}, 0, nil},
	}
	for _, tt := range tests {
		got, err := tt.p.NativeSamples(tt.frame)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: got %v, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestPSNR(t *testing.T) {
	if p := PSNR(0, 10, 8); !math.IsInf(p, 1) {
		t.Errorf("identical: %v, want +Inf", p)
	}
	// One 8-bit sample off by 255 among 1: MSE = peak², 0 dB.
	if p := PSNR(255*255, 1, 8); math.Abs(p) > 1e-9 {
		t.Errorf("full-scale error: %v dB, want 0", p)
	}
	// MSE 1 at 12 bits: 20·log10(4095).
	if p, want := PSNR(100, 100, 12), 20*math.Log10(4095); math.Abs(p-want) > 1e-9 {
		t.Errorf("12-bit: %v dB, want %v", p, want)
	}
}

// TestReadPixels reads native and encapsulated files of the pydicom corpus.
func TestReadPixels(t *testing.T) {
	native := ReadPixels(t, PydicomFile(t, "MR_small.dcm"))
	if native.Rows != 64 || native.Columns != 64 || native.SamplesPerPixel != 1 || native.BitsAllocated != 16 ||
		native.NumberOfFrames != 1 || len(native.Native) != 64*64*2 || native.Fragments != nil {
		t.Fatalf("MR_small: %+v", native)
	}
	if s, err := native.NativeSamples(0); err != nil || len(s) != 64*64 {
		t.Fatalf("MR_small samples: %d, %v", len(s), err)
	}
	rle := ReadPixels(t, PydicomFile(t, "SC_rgb_rle_2frame.dcm"))
	frames := rle.Frames(t, StartNone)
	if rle.SamplesPerPixel != 3 || rle.NumberOfFrames != 2 || len(frames) != 2 || rle.Native != nil {
		t.Fatalf("SC_rgb_rle_2frame: %d frames of %+v", len(frames), rle)
	}
}

// TestOPJDecompress decodes the JPEG 2000 frame of a corpus file with
// opj_decompress.
func TestOPJDecompress(t *testing.T) {
	p := ReadPixels(t, PydicomFile(t, "MR_small_jp2klossless.dcm"))
	pix := OPJDecompress(t, p.Frames(t, StartJPEG2000)[0], p.Columns, p.Rows, p.SamplesPerPixel, 16)
	if len(pix) != p.Rows*p.Columns {
		t.Fatalf("%d samples", len(pix))
	}
	if slices.Max(pix) == slices.Min(pix) {
		t.Fatal("flat image")
	}
}

func TestCorruptionSweep(t *testing.T) {
	errShort := errors.New("short")
	good := []byte("0123456789")
	var seen []string
	decode := func(b []byte) error {
		seen = append(seen, string(b))
		if len(b) < 5 {
			return errShort
		}
		return nil
	}
	CorruptionSweep(t, good, 3, 5, decode, func(err error) bool { return errors.Is(err, errShort) })
	want := []string{"", "j123456789", "012", "012i456789", "012345", "012345l789", "012345678", "012345678c"}
	if !slices.Equal(seen, want) {
		t.Errorf("decoded %q, want %q", seen, want)
	}
}

func TestSuyashFile(t *testing.T) {
	if p := ReadPixels(t, SuyashFile(t, "5.dcm")); p.NumberOfFrames != 2 {
		t.Fatalf("5.dcm: %d frames, want 2", p.NumberOfFrames)
	}
}

// TestOnlyTestsImport keeps the package out of production code: no
// non-test Go file of the module may import it.
func TestOnlyTestsImport(t *testing.T) {
	const self = "dicomgate/dimse/dicomtest"
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return nil // mid-edit elsewhere; the compiler reports it
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == self {
				t.Errorf("%s imports %s outside a _test.go file", p, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
