package rle

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// variant is an RLE file to check against DCMTK: a corpus file as is, or
// one dcmcrle makes from src.
type variant struct {
	name     string
	src      func(testing.TB) string
	compress bool
}

func corpus(name string) func(testing.TB) string {
	return func(t testing.TB) string { return dicomtest.PydicomFile(t, name) }
}

func suyash(name string) func(testing.TB) string {
	return func(t testing.TB) string { return dicomtest.SuyashFile(t, name) }
}

// rleVariants covers pydicom's RLE files (8/16/32 bit, grey and RGB,
// multi-frame) and dcmcrle's encodings of uncompressed files.
func rleVariants() []variant {
	var vs []variant
	for _, f := range []string{
		"MR_small_RLE.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_16bit_2frame.dcm",
		"SC_rgb_rle_2frame.dcm", "SC_rgb_rle_32bit.dcm", "SC_rgb_rle_32bit_2frame.dcm",
		"rtdose_rle.dcm", "rtdose_rle_1frame.dcm",
	} {
		vs = append(vs, variant{f, corpus(f), false})
	}
	vs = append(vs,
		variant{"MR_small+dcmcrle", corpus("MR_small.dcm"), true},
		variant{"CT_small+dcmcrle", corpus("CT_small.dcm"), true},
		variant{"SC_rgb_jpeg_dcmd+dcmcrle", corpus("SC_rgb_jpeg_dcmd.dcm"), true},
		variant{"SC_rgb_small_odd+dcmcrle", corpus("SC_rgb_small_odd.dcm"), true},
		variant{"rtdose+dcmcrle(32-bit)", corpus("rtdose.dcm"), true},
		variant{"3+dcmcrle", suyash("3.dcm"), true},
		variant{"5+dcmcrle(2 frames 512x512)", suyash("5.dcm"), true},
		variant{"6+dcmcrle(8-bit)", suyash("6.dcm"), true},
	)
	return vs
}

// TestBitExactAgainstDCMTK decodes every frame and compares it byte for
// byte with dcmdrle's output.
func TestBitExactAgainstDCMTK(t *testing.T) {
	dicomtest.LookPath(t, "dcmcrle")
	dicomtest.LookPath(t, "dcmdrle")
	dir := t.TempDir()
	for i, v := range rleVariants() {
		in := v.src(t)
		if v.compress {
			out := filepath.Join(dir, "c"+strconv.Itoa(i)+".dcm")
			dicomtest.Run(t, "dcmcrle", in, out)
			in = out
		}
		dec := filepath.Join(dir, "d"+strconv.Itoa(i)+".dcm")
		dicomtest.Run(t, "dcmdrle", in, dec)
		enc := dicomtest.ReadPixels(t, in)
		ref := dicomtest.ReadPixels(t, dec)
		for f, frame := range enc.Frames(t, dicomtest.StartNone) {
			t.Run(v.name+"/frame"+strconv.Itoa(f), func(t *testing.T) {
				want, err := nativePlanar(ref, f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Decode(frame, enc.Rows, enc.Columns, enc.SamplesPerPixel, enc.BitsAllocated)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !bytes.Equal(got, want) {
					for k := range got {
						if k >= len(want) || got[k] != want[k] {
							t.Fatalf("%d bytes, dcmdrle %d; first difference at byte %d", len(got), len(want), k)
						}
					}
					t.Fatalf("%d bytes, dcmdrle %d", len(got), len(want))
				}
			})
		}
	}
}

// nativePlanar returns frame f of native pixel data with planar
// configuration 1, as Decode returns it, whatever the file's planar
// configuration.
func nativePlanar(p dicomtest.Pixels, f int) ([]byte, error) {
	bps := p.BitsAllocated / 8
	px := p.Rows * p.Columns
	n := px * p.SamplesPerPixel * bps
	if bps < 1 || (f+1)*n > len(p.Native) {
		return nil, fmt.Errorf("native data of %d bytes too short for frame %d", len(p.Native), f)
	}
	raw := p.Native[f*n : (f+1)*n]
	if p.PlanarConfiguration == 1 || p.SamplesPerPixel == 1 {
		return raw, nil
	}
	out := make([]byte, n)
	for i := 0; i < px; i++ {
		for s := 0; s < p.SamplesPerPixel; s++ {
			copy(out[(s*px+i)*bps:(s*px+i+1)*bps], raw[(i*p.SamplesPerPixel+s)*bps:])
		}
	}
	return out, nil
}
