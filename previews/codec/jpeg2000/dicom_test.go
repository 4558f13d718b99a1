package jpeg2000

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Test helpers around real DICOM files and the DCMTK peers.

const pydicomDir = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

// requirePeer skips (or fails, when DICOMGATE_REQUIRE_PEERS=1) a test whose
// peer tool or corpus is absent.
func requirePeer(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
		t.Fatalf("peer %s is absent and DICOMGATE_REQUIRE_PEERS=1", what)
	}
	t.Skipf("peer %s is absent", what)
}

func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	requirePeer(t, err == nil, name)
	return p
}

func requireFile(t testing.TB, path string) {
	t.Helper()
	_, err := os.Stat(path)
	requirePeer(t, err == nil, path)
}

// dicomImage is the pixel description and pixel data of a DICOM file.
type dicomImage struct {
	rows, cols, spp, bitsAllocated, frames, planar int
	fragments                                      [][]byte // encapsulated
	native                                         []byte   // native, little endian
}

func intTag(t testing.TB, ds dicom.Dataset, tg tag.Tag, def int) int {
	t.Helper()
	el, err := ds.FindElementByTag(tg)
	if err != nil {
		return def
	}
	switch v := el.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0]
		}
	case []string:
		if len(v) > 0 {
			var n int
			for _, ch := range strings.TrimSpace(v[0]) {
				if ch < '0' || ch > '9' {
					return def
				}
				n = n*10 + int(ch-'0')
			}
			return n
		}
	}
	return def
}

// readDICOM parses path; encapsulated pixel data is returned as fragments,
// native pixel data as raw bytes.
func readDICOM(t testing.TB, path string, native bool) dicomImage {
	t.Helper()
	var opts []dicom.ParseOption
	if native {
		opts = append(opts, dicom.SkipProcessingPixelDataValue())
	}
	ds, err := dicom.ParseFile(path, nil, opts...)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	img := dicomImage{
		rows:          intTag(t, ds, tag.Rows, 0),
		cols:          intTag(t, ds, tag.Columns, 0),
		spp:           intTag(t, ds, tag.SamplesPerPixel, 1),
		bitsAllocated: intTag(t, ds, tag.BitsAllocated, 16),
		frames:        intTag(t, ds, tag.NumberOfFrames, 1),
		planar:        intTag(t, ds, tag.PlanarConfiguration, 0),
	}
	el, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		t.Fatalf("%s: no pixel data: %v", path, err)
	}
	info := dicom.MustGetPixelDataInfo(el.Value)
	if native {
		img.native = info.UnprocessedValueData
		return img
	}
	for _, f := range info.Frames {
		img.fragments = append(img.fragments, f.EncapsulatedData.Data)
	}
	return img
}

// frameStreams groups fragments into one compressed stream per frame.
func (d dicomImage) frameStreams(t testing.TB) [][]byte {
	t.Helper()
	if d.frames <= 1 {
		var all []byte
		for _, f := range d.fragments {
			all = append(all, f...)
		}
		return [][]byte{all}
	}
	if len(d.fragments) != d.frames {
		t.Fatalf("%d fragments for %d frames", len(d.fragments), d.frames)
	}
	return d.fragments
}

// nativeFrame returns frame i of native pixel data as interleaved samples.
func (d dicomImage) nativeFrame(t testing.TB, i int) []uint16 {
	t.Helper()
	n := d.rows * d.cols * d.spp
	bps := d.bitsAllocated / 8
	off := i * n * bps
	if off+n*bps > len(d.native) {
		t.Fatalf("native pixel data too short: %d bytes for frame %d", len(d.native), i)
	}
	raw := d.native[off : off+n*bps]
	out := make([]uint16, n)
	for k := range n {
		var v uint16
		if bps == 1 {
			v = uint16(raw[k])
		} else {
			v = binary.LittleEndian.Uint16(raw[2*k:])
		}
		if d.planar == 1 && d.spp > 1 {
			plane, px := k/(d.rows*d.cols), k%(d.rows*d.cols)
			out[px*d.spp+plane] = v
		} else {
			out[k] = v
		}
	}
	return out
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
