package dicomtest

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// OPJDecompress decodes a JPEG 2000 codestream, or JP2 file, of w×h pixels
// of comps components of prec bits with OpenJPEG's opj_decompress and
// returns its samples, components interleaved. It skips the test (fails it
// when RequirePeers) without opj_decompress, and fails it when the program
// fails or writes another size.
func OPJDecompress(t testing.TB, stream []byte, w, h, comps, prec int) []uint16 {
	t.Helper()
	tool := LookPath(t, "opj_decompress")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.j2k")
	if !bytes.HasPrefix(stream, []byte(StartJPEG2000)) {
		in = filepath.Join(dir, "in.jp2")
	}
	if err := os.WriteFile(in, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.rawl")
	Run(t, tool, "-quiet", "-i", in, "-o", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	bps := 1
	if prec > 8 {
		bps = 2
	}
	n := w * h
	if len(raw) != n*comps*bps {
		t.Fatalf("opj_decompress wrote %d bytes for %dx%dx%d, precision %d", len(raw), w, h, comps, prec)
	}
	pix := make([]uint16, n*comps)
	for c := range comps {
		for i := range n {
			// .rawl stores the components one after the other, little
			// endian.
			k := c*n + i
			v := uint16(raw[k])
			if bps == 2 {
				v = binary.LittleEndian.Uint16(raw[2*k:])
			}
			pix[i*comps+c] = v
		}
	}
	return pix
}
