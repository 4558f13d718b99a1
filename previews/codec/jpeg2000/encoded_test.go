package jpeg2000

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// source is an uncompressed picture handed to opj_compress.
type source struct {
	name           string
	w, h, nc, bits int
	signed         bool
	pix            []uint16 // interleaved
}

// rawl returns w×h pixels of nc interleaved components of the given
// precision in OpenJPEG's .rawl layout: the components one after the
// other, one byte per sample up to 8 bits, else two, little endian.
func rawl(pix []uint16, w, h, nc, bits int) []byte {
	bps := 1
	if bits > 8 {
		bps = 2
	}
	n := w * h
	raw := make([]byte, n*nc*bps)
	for c := range nc {
		for i := range n {
			v := pix[i*nc+c]
			k := c*n + i
			if bps == 1 {
				raw[k] = byte(v)
			} else {
				binary.LittleEndian.PutUint16(raw[2*k:], v)
			}
		}
	}
	return raw
}

func (s source) rawFormat() string {
	sg := "u"
	if s.signed {
		sg = "s"
	}
	return fmt.Sprintf("%d,%d,%d,%d,%s", s.w, s.h, s.nc, s.bits, sg)
}

// encode runs opj_compress with args on s and returns the codestream.
func (s source) encode(t testing.TB, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.rawl")
	if err := os.WriteFile(in, rawl(s.pix, s.w, s.h, s.nc, s.bits), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.j2k")
	dicomtest.Run(t, "opj_compress", append([]string{"-i", in, "-F", s.rawFormat(), "-o", out}, args...)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dicomSource reads the native pixel data of a DICOM file.
func dicomSource(t testing.TB, path string, bits int, signed bool) source {
	t.Helper()
	d := dicomtest.ReadPixels(t, path)
	pix, err := d.NativeSamples(0)
	if err != nil {
		t.Fatal(err)
	}
	if bits < 16 && d.BitsAllocated == 16 {
		for i, v := range pix {
			pix[i] = v & (1<<uint(bits) - 1)
		}
	}
	return source{name: filepath.Base(path), w: d.Columns, h: d.Rows, nc: d.SamplesPerPixel, bits: bits, signed: signed, pix: pix}
}

// TestEncodedByOpenJPEG encodes real and synthetic pictures with
// opj_compress across progression orders, layers, precincts, resolution
// levels, code-block sizes and styles, tiles, tile-parts, image and tile
// offsets, SOP/EPH markers, RCT/ICT and both wavelets, and compares Decode
// with opj_decompress: reversible streams bit-exact, irreversible ones
// within 35 dB PSNR.
func TestEncodedByOpenJPEG(t *testing.T) {
	dicomtest.LookPath(t, "opj_compress")
	dicomtest.LookPath(t, "opj_decompress")
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	rgb := dicomtest.PydicomFile(t, "SC_rgb_jpeg_dcmd.dcm")
	sources := []source{
		dicomSource(t, ct, 16, true),
		dicomSource(t, rgb, 8, false),
		{name: "synthetic-ct-12bit", w: 300, h: 211, nc: 1, bits: 12, pix: syntheticCT(300, 211, 4095)},
	}
	variants := []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"lrcp-layers", []string{"-p", "LRCP", "-r", "40,20,10,1"}},
		{"rlcp-precincts", []string{"-p", "RLCP", "-n", "4", "-c", "[64,64],[32,32],[16,16]", "-r", "30,1"}},
		{"rpcl-small-blocks", []string{"-p", "RPCL", "-b", "16,8", "-c", "[32,32]"}},
		{"pcrl-tiles", []string{"-p", "PCRL", "-t", "100,90", "-c", "[64,64],[32,32]"}},
		{"cprl-offsets", []string{"-p", "CPRL", "-d", "3,5", "-T", "1,2", "-t", "64,48", "-c", "[32,32]"}},
		{"one-level", []string{"-n", "1"}},
		{"no-transform", []string{"-n", "1", "-b", "64,64"}},
		{"bypass", []string{"-M", "1", "-r", "20,1"}},
		{"reset", []string{"-M", "2"}},
		{"termall", []string{"-M", "4", "-r", "15,1"}},
		{"causal", []string{"-M", "8"}},
		{"predictable", []string{"-M", "16"}},
		{"segsym", []string{"-M", "32"}},
		{"all-modes", []string{"-M", "63", "-r", "25,5,1", "-p", "RPCL"}},
		{"sop-eph", []string{"-SOP", "-EPH", "-r", "10,1"}},
		{"tile-parts", []string{"-t", "64,64", "-TP", "R", "-p", "RLCP"}},
		{"irreversible", []string{"-I"}},
		{"irreversible-rate", []string{"-I", "-r", "8", "-p", "PCRL"}},
		{"irreversible-layers-modes", []string{"-I", "-r", "20,8,4", "-M", "63", "-t", "96,80"}},
		{"irreversible-quality", []string{"-I", "-q", "42", "-c", "[64,64]"}},
	}
	for _, src := range sources {
		for _, v := range variants {
			t.Run(src.name+"/"+v.name, func(t *testing.T) {
				args := v.args
				if src.nc == 3 && v.name == "no-transform" {
					args = append(args, "-mct", "0")
				}
				stream := src.encode(t, args...)
				exact, psnr := compareOPJ(t, stream, 35)
				lossless := !strings.Contains(v.name, "irreversible")
				if lossless && !exact {
					t.Fatalf("reversible stream not bit-exact (PSNR %.2f dB)", psnr)
				}
				if lossless && !strings.Contains(v.name, "offsets") {
					// A fully decoded reversible stream restores the source
					// (opj_compress -d shifts the raw input, so offsets are
					// checked against opj_decompress only).
					img, _ := Decode(stream)
					if !strings.Contains(v.name, "layers") || strings.HasSuffix(strings.Join(args, " "), ",1") {
						for i, p := range src.pix {
							if img.Pix[i] != p&(1<<uint(src.bits)-1) && !(src.signed && img.Pix[i] == p) {
								t.Fatalf("sample %d: %d, source %d", i, img.Pix[i], p)
							}
						}
					}
				}
			})
		}
	}
}

// syntheticCT returns a w×h CT-like picture with values up to maxVal: a
// noisy elliptic body with a bone insert on air.
func syntheticCT(w, h, maxVal int) []uint16 {
	pix := make([]uint16, w*h)
	seed := uint32(12345)
	noise := func(n int) int {
		seed = seed*1664525 + 1013904223
		return int(seed>>16) % n
	}
	for y := range h {
		for x := range w {
			dx, dy := float64(x-w/2)/float64(w/2-w/20), float64(y-h/2)/float64(h/2-h/8)
			v := 24 + noise(8)
			if dx*dx+dy*dy < 1 {
				v = maxVal/4 + 40 + noise(60)
				if (dx-0.3)*(dx-0.3)+dy*dy < 0.02 {
					v = maxVal*3/4 + noise(maxVal/20+1)
				}
			}
			pix[y*w+x] = uint16(min(v, maxVal))
		}
	}
	return pix
}
