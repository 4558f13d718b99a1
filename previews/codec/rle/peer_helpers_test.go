package rle

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// pydicomCorpus is where Debian's python3-pydicom installs its test files.
const pydicomCorpus = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

// peersRequired reports whether a missing peer must fail the test (CI).
func peersRequired() bool { return os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" }

// missingPeer skips, or fails under DICOMGATE_REQUIRE_PEERS=1.
func missingPeer(t testing.TB, format string, args ...any) {
	t.Helper()
	if peersRequired() {
		t.Fatalf("peer required but missing: "+format, args...)
	}
	t.Skipf("peer missing: "+format, args...)
}

// needTools makes sure the DCMTK tools are on PATH.
func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missingPeer(t, "%s (DCMTK) not on PATH", n)
		}
	}
}

// corpusFile returns a pydicom corpus file, skipping when absent.
func corpusFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(pydicomCorpus, name)
	if _, err := os.Stat(p); err != nil {
		missingPeer(t, "pydicom corpus file %s", p)
	}
	return p
}

// suyashFile returns a file of github.com/suyashkumar/dicom@v1.1.0/testdata.
func suyashFile(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		missingPeer(t, "go env GOMODCACHE: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "github.com/suyashkumar/dicom@v1.1.0/testdata", name)
	if _, err := os.Stat(p); err != nil {
		missingPeer(t, "suyashkumar testdata %s", p)
	}
	return p
}

// dcmtk runs a DCMTK tool and fails the test with its output on error.
func dcmtk(t testing.TB, tool string, args ...string) {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

// dicomPixels is what a test needs from a DICOM file.
type dicomPixels struct {
	rows, cols, spp, bitsAllocated, planar, frames int
	photometric, transferSyntax                    string
	// encapsulated holds one complete bitstream per frame.
	encapsulated [][]byte
	// native holds the raw native pixel data value.
	native []byte
}

func intOf(ds *dicom.Dataset, tg tag.Tag, def int) int {
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		return def
	}
	switch v := e.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0]
		}
	case []string:
		if len(v) > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil {
				return n
			}
		}
	}
	return def
}

func stringOf(ds *dicom.Dataset, tg tag.Tag) string {
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		return ""
	}
	if v, ok := e.Value.GetValue().([]string); ok && len(v) > 0 {
		return strings.TrimRight(v[0], " \x00")
	}
	return ""
}

// readDICOM parses a file with suyashkumar/dicom and returns its pixels:
// encapsulated fragments grouped into frames, or the native bytes.
func readDICOM(t testing.TB, path string) dicomPixels {
	t.Helper()
	ds, err := dicom.ParseFile(path, nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	p := dicomPixels{
		rows:           intOf(&ds, tag.Rows, 0),
		cols:           intOf(&ds, tag.Columns, 0),
		spp:            intOf(&ds, tag.SamplesPerPixel, 1),
		bitsAllocated:  intOf(&ds, tag.BitsAllocated, 0),
		planar:         intOf(&ds, tag.PlanarConfiguration, 0),
		frames:         intOf(&ds, tag.NumberOfFrames, 1),
		photometric:    stringOf(&ds, tag.PhotometricInterpretation),
		transferSyntax: stringOf(&ds, tag.TransferSyntaxUID),
	}
	e, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		t.Fatalf("%s: no pixel data: %v", path, err)
	}
	info, ok := e.Value.GetValue().(dicom.PixelDataInfo)
	if !ok {
		t.Fatalf("%s: pixel data value %T", path, e.Value.GetValue())
	}
	if info.IntentionallyUnprocessed {
		p.native = info.UnprocessedValueData
		return p
	}
	var frags [][]byte
	for _, f := range info.Frames {
		frags = append(frags, f.EncapsulatedData.Data)
	}
	p.encapsulated, err = groupFragments(frags, p.frames)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// groupFragments maps fragments to frames: RLE codes each frame as exactly
// one fragment (PS3.5 A.4.2).
func groupFragments(frags [][]byte, frames int) ([][]byte, error) {
	if len(frags) != frames {
		return nil, errors.New("RLE needs one fragment per frame: " + strconv.Itoa(len(frags)) + " fragments for " + strconv.Itoa(frames) + " frames")
	}
	return frags, nil
}

// nativePlanar returns frame f of native pixel data with planar
// configuration 1, whatever the file's planar configuration.
func nativePlanar(p dicomPixels, f int) ([]byte, error) {
	bps := p.bitsAllocated / 8
	px := p.rows * p.cols
	n := px * p.spp * bps
	if bps < 1 || (f+1)*n > len(p.native) {
		return nil, fmt.Errorf("native data of %d bytes too short for frame %d", len(p.native), f)
	}
	raw := p.native[f*n : (f+1)*n]
	if p.planar == 1 || p.spp == 1 {
		return raw, nil
	}
	out := make([]byte, n)
	for i := 0; i < px; i++ {
		for s := 0; s < p.spp; s++ {
			copy(out[(s*px+i)*bps:(s*px+i+1)*bps], raw[(i*p.spp+s)*bps:])
		}
	}
	return out, nil
}
