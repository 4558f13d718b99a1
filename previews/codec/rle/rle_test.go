package rle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// frame builds an RLE frame from already PackBits-coded segments.
func frame(segs ...[]byte) []byte {
	hdr := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(hdr, uint32(len(segs)))
	off := headerSize
	var body []byte
	for i, s := range segs {
		binary.LittleEndian.PutUint32(hdr[4+4*i:], uint32(off))
		off += len(s)
		body = append(body, s...)
	}
	return append(hdr, body...)
}

// packBits codes b with literal runs and replicate runs (PS3.5 G.3.1),
// the way an encoder does: runs of three or more equal bytes replicate.
func packBits(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		j := i + 1
		for j < len(b) && b[j] == b[i] && j-i < 128 {
			j++
		}
		if j-i >= 3 {
			out = append(out, byte(int8(1-(j-i))), b[i])
			i = j
			continue
		}
		// literal run up to the next run of three
		j = i
		for j < len(b) && j-i < 128 {
			if j+2 < len(b) && b[j] == b[j+1] && b[j] == b[j+2] {
				break
			}
			j++
		}
		out = append(out, byte(j-i-1))
		out = append(out, b[i:j]...)
		i = j
	}
	return out
}

func TestUnpackBits(t *testing.T) {
	tests := []struct {
		name    string
		seg     []byte
		n       int
		want    []byte
		wantErr bool
	}{
		{"literal", []byte{2, 'a', 'b', 'c'}, 3, []byte("abc"), false},
		{"replicate", []byte{0xFD, 'x'}, 4, []byte("xxxx"), false},
		{"replicate 128", []byte{0x81, 7}, 128, bytes.Repeat([]byte{7}, 128), false},
		{"literal 128", append([]byte{127}, bytes.Repeat([]byte{9}, 128)...), 128, bytes.Repeat([]byte{9}, 128), false},
		{"noop -128 skipped", []byte{0x80, 0, 'q'}, 1, []byte("q"), false},
		{"mixed", []byte{0, 'a', 0xFE, 'b', 1, 'c', 'd'}, 6, []byte("abbbcd"), false},
		{"even padding after data ignored", []byte{0, 'a', 0}, 1, []byte("a"), false},
		{"run longer than needed is clipped", []byte{0xF0, 'z'}, 5, []byte("zzzzz"), false},
		{"literal overruns segment", []byte{5, 'a'}, 6, nil, true},
		{"replicate without byte", []byte{0xFE}, 3, nil, true},
		{"segment too short", []byte{0, 'a'}, 2, nil, true},
		{"empty segment", nil, 1, nil, true},
		{"only no-ops", []byte{0x80, 0x80}, 1, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, tt.n)
			err := unpackBits(tt.seg, dst, 1, tt.n)
			if tt.wantErr {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dst, tt.want) {
				t.Fatalf("got %q, want %q", dst, tt.want)
			}
		})
	}
}

func TestDecodeLayout(t *testing.T) {
	// 2x1 pixels, 3 samples of 16 bits: sample s of pixel p is 0x0100*s + p + 0xA0B0.
	var segs [][]byte
	var want []byte
	for s := 0; s < 3; s++ {
		var hi, lo []byte
		for p := 0; p < 2; p++ {
			v := uint16(0xA0B0 + 0x0100*s + p)
			hi = append(hi, byte(v>>8))
			lo = append(lo, byte(v))
			want = binary.LittleEndian.AppendUint16(want, v)
		}
		segs = append(segs, packBits(hi), packBits(lo))
	}
	got, err := Decode(frame(segs...), 1, 2, 3, 16)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x (planar, little-endian)", got, want)
	}
}

func TestDecodeRoundTrip32(t *testing.T) {
	const rows, cols = 7, 9
	vals := make([]uint32, rows*cols)
	for i := range vals {
		vals[i] = uint32(i*i*7919) ^ 0xDEAD0000
		if i%5 == 0 {
			vals[i] = 0
		}
	}
	var segs [][]byte
	for b := 3; b >= 0; b-- {
		plane := make([]byte, len(vals))
		for i, v := range vals {
			plane[i] = byte(v >> (8 * b))
		}
		segs = append(segs, packBits(plane))
	}
	got, err := Decode(frame(segs...), rows, cols, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if g := binary.LittleEndian.Uint32(got[4*i:]); g != v {
			t.Fatalf("sample %d = %#x, want %#x", i, g, v)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := frame(packBits([]byte{1, 2, 3, 4}))
	withHeader := func(f func(h []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	tests := []struct {
		name                  string
		data                  []byte
		rows, cols, spp, bits int
		want                  error
	}{
		{"good", good, 2, 2, 1, 8, nil},
		{"12 bits", good, 2, 2, 1, 12, ErrUnsupported},
		{"2 samples", good, 2, 2, 2, 8, ErrUnsupported},
		{"zero rows", good, 0, 2, 1, 8, ErrUnsupported},
		{"negative cols", good, 2, -2, 1, 8, ErrUnsupported},
		{"short header", good[:40], 2, 2, 1, 8, ErrCorrupt},
		{"segment count mismatch", good, 2, 2, 1, 16, ErrCorrupt},
		{"offset inside header", withHeader(func(h []byte) { h[4] = 10 }), 2, 2, 1, 8, ErrCorrupt},
		{"offset beyond data", withHeader(func(h []byte) { binary.LittleEndian.PutUint32(h[4:], 1<<31) }), 2, 2, 1, 8, ErrCorrupt},
		{"segment too short", good, 2, 3, 1, 8, ErrCorrupt},
		{"implausible size", good, 60000, 60000, 3, 32, ErrUnsupported},
		{"more than data can hold", good, 1000, 1000, 1, 8, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.data, tt.rows, tt.cols, tt.spp, tt.bits)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Descending offsets.
	f := frame(packBits([]byte{1, 2}), packBits([]byte{3, 4}))
	binary.LittleEndian.PutUint32(f[4:], headerSize+2)
	binary.LittleEndian.PutUint32(f[8:], headerSize)
	if _, err := Decode(f, 1, 2, 1, 16); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("descending offsets: err = %v", err)
	}
}

// golden files: RLE frames from the pydicom corpus and dcmdrle's output
// (see testdata/PROVENANCE.md).
var goldens = []struct {
	rle, raw              string
	rows, cols, spp, bits int
	rawInterleaved        bool
}{
	{"mr_small.rle", "mr_small.raw", 64, 64, 1, 16, false},
	{"rtdose_1frame.rle", "rtdose_1frame.raw", 10, 10, 1, 32, false},
	{"sc_rgb.rle", "sc_rgb.raw", 100, 100, 3, 8, true},
}

func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.rle, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", g.rle))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join("testdata", g.raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data, g.rows, g.cols, g.spp, g.bits)
			if err != nil {
				t.Fatal(err)
			}
			want, err := nativePlanar(dicomtest.Pixels{Rows: g.rows, Columns: g.cols, SamplesPerPixel: g.spp, BitsAllocated: g.bits, PlanarConfiguration: map[bool]int{true: 0, false: 1}[g.rawInterleaved], Native: raw}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("decoded frame differs from dcmdrle's output")
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, g := range goldens {
		data, err := os.ReadFile(filepath.Join("testdata", g.rle))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, g.rows, g.cols, g.spp, g.bits)
	}
	f.Add(frame(packBits([]byte{1, 2, 3, 4})), 2, 2, 1, 8)
	f.Fuzz(func(t *testing.T, data []byte, rows, cols, spp, bits int) {
		out, err := Decode(data, rows, cols, spp, bits)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(out) != rows*cols*spp*bits/8 {
			t.Fatalf("got %d bytes for %dx%dx%dx%d", len(out), rows, cols, spp, bits)
		}
	})
}

// BenchmarkDecode512 decodes a 512x512 16-bit CT-like frame.
func BenchmarkDecode512(b *testing.B) {
	const n = 512
	var hi, lo []byte
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			v := uint16(0)
			dx, dy := x-n/2, y-n/2
			if dx*dx+dy*dy < (n/2-20)*(n/2-20) {
				v = uint16(1000 + (x*7+y*13)%97 + (x*y)%23)
			}
			hi = append(hi, byte(v>>8))
			lo = append(lo, byte(v))
		}
	}
	data := frame(packBits(hi), packBits(lo))
	b.SetBytes(n * n * 2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, n, n, 1, 16); err != nil {
			b.Fatal(err)
		}
	}
}
